"""``riskmon eval scenarios [DIR]``: every scenario through the real pipeline (normalize, rules,
alerts, PostgreSQL) on an accelerated clock, scored against its expected alerts.

Per scenario and in total: precision and recall of alerts, level accuracy (matched alerts whose
most severe level is the expected one), detection delay (alert open time minus the start of
the expected window), false process alerts per 1,000 sensor-days, alert rows per hazard, and
the alarm-load KPIs of ``alerts.kpis``.  A scenario fails on a missed, forbidden or wrongly
graded alert, more than 3 rows for one hazard, or more than 1 false process alert per 1,000
sensor-days; the command then exits 1.  An alert is *matched*
when an expectation names its rule and sensor (or site) and it opened in the window; alerts of
``allow`` rules are expected side effects and not counted; every other alert is false.
"""

from __future__ import annotations

import statistics
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import text

from alerts import kpis
from ingest.raw import RawMessage
from monitor import devservices
from monitor.app import build_runtime
from monitor.clock import ManualClock, to_datetime
from monitor.config import Settings
from monitor.store import alerts as alert_store
from simulators.scenario import Message, Scenario, seconds

SCENARIOS_DIR = Path(str(resources.files("simulators") / "scenarios"))  # package data
MAX_ROWS = 3  # alert rows (openings) per hazard


@dataclass
class Raised:
    rule: str
    sensor: str | None
    site: str
    category: str
    level: int
    opened: float  # seconds since the scenario start (event time)
    suppressed: bool = False  # by design, never shown: neither a hit nor a false alert


@dataclass
class Report:
    name: str
    domain: str
    sensor_days: float
    expected: int = 0
    matched: int = 0
    level_right: int = 0
    delays: list[float] = field(default_factory=list)
    false_alerts: list[Raised] = field(default_factory=list)
    forbidden: list[Raised] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    wrong_level: list[str] = field(default_factory=list)
    rows_per_hazard: list[int] = field(default_factory=list)
    raised: int = 0
    suppressed: list[Raised] = field(default_factory=list)
    kpis: dict[str, Any] = field(default_factory=dict)
    risk_expected: int = 0
    risk_wrong: list[str] = field(default_factory=list)

    @property
    def false_process(self) -> int:
        return sum(1 for a in self.false_alerts if a.category == "process")

    @property
    def precision(self) -> float:
        judged = self.matched + len(self.false_alerts)
        return self.matched / judged if judged else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.expected if self.expected else 1.0

    @property
    def false_rate(self) -> float:
        """False process alerts per 1,000 sensor-days."""
        return 1000 * self.false_process / self.sensor_days if self.sensor_days else 0.0

    @property
    def ok(self) -> bool:
        """Every expected alert at its level with at most MAX_ROWS rows, nothing forbidden,
        at most 1 false process alert per 1,000 sensor-days."""
        return (
            not self.missed
            and not self.forbidden
            and not self.wrong_level
            and not self.risk_wrong
            and max(self.rows_per_hazard, default=0) <= MAX_ROWS
            and self.false_rate <= 1.0
        )


def score(scenario: Scenario, raised: list[Raised]) -> Report:
    report = Report(scenario.name, scenario.domain, scenario.sensor_days)
    report.suppressed = [a for a in raised if a.suppressed]
    alerts = [a for a in raised if not a.suppressed]
    used: set[int] = set()
    for exp in scenario.expect:
        report.expected += 1
        lo, hi = seconds(exp.from_), seconds(exp.to)
        hits = [
            i
            for i, a in enumerate(alerts)
            if i not in used
            and a.rule == exp.rule
            and (exp.sensor is None or a.sensor == exp.sensor)
            and (exp.site is None or a.site == exp.site)
            and lo <= a.opened <= hi
        ]
        if not hits:
            report.missed.append(f"{exp.rule} on {exp.sensor or exp.site} in [{lo:g}, {hi:g}] s")
            continue
        first = min(hits, key=lambda i: alerts[i].opened)
        # Re-openings of the same fingerprint in the window belong to the same hazard.
        same = {(alerts[i].rule, alerts[i].sensor, alerts[i].site) for i in hits}
        used.update(i for i in hits if (alerts[i].rule, alerts[i].sensor, alerts[i].site) in same)
        report.matched += 1
        report.rows_per_hazard.append(len(hits))
        report.delays.append(alerts[first].opened - lo)
        # The most severe level reached (1 is red): the smallest number.
        reached = min(alerts[i].level for i in hits)
        report.level_right += reached == exp.level
        if reached != exp.level:
            report.wrong_level.append(
                f"{exp.rule} on {exp.sensor or exp.site}: level {reached}, expected {exp.level}"
            )
    for i, a in enumerate(alerts):
        if i in used:
            continue
        if any(
            f.rule == a.rule and f.sensor in (None, a.sensor) and f.site in (None, a.site)
            for f in scenario.forbid
        ):
            report.forbidden.append(a)
        if a.rule not in scenario.allow:
            report.false_alerts.append(a)
    report.raised = len(alerts)
    return report


def score_risk(scenario: Scenario, history: list[tuple[str, float, int]], report: Report) -> None:
    """``history``: (site, seconds since the start, level) of every stored risk change."""
    for exp in scenario.expect_risk:
        report.risk_expected += 1
        lo, hi = seconds(exp.from_), seconds(exp.to)
        mine = [(t, lv) for s, t, lv in history if s == exp.site]
        before = [lv for t, lv in mine if t <= lo]  # the level in force at the window's start
        inside = [lv for t, lv in mine if lo < t <= hi] + before[-1:]
        worst = min(inside, default=None)
        if worst != exp.level:
            report.risk_wrong.append(
                f"risk of {exp.site} in [{lo / 3600:g}, {hi / 3600:g}] h: most severe"
                f" {worst}, expected {exp.level}"
            )


async def run_scenario(scenario: Scenario, server: str) -> Report:
    """Drive the pipeline with the scenario's deliveries on its own clock, then score."""
    clock = ManualClock(scenario.epoch0)
    with tempfile.TemporaryDirectory(prefix="riskmon-scenario-") as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(yaml.safe_dump(scenario.config()))
        async with devservices.temporary_database(server, "riskmon_scn") as url:
            settings = Settings(
                database_url=url,
                mqtt_url="",
                kafka_bootstrap_servers="",
                config=config,
                rule_packs=scenario.rule_packs,
                startup_grace_s=0,
            )
            async with build_runtime(settings, clock=clock) as runtime:
                for t, _, messages in scenario.messages():
                    clock.set(scenario.epoch0 + t)
                    await runtime.pipeline.ingest([_message(m, clock.now()) for m in messages])
                    await runtime.pipeline.tick()
                    if scenario.expect_risk and runtime.risk is not None:
                        await runtime.risk.tick()
                async with runtime.db.connect() as conn:
                    rows = await conn.execute(
                        text(
                            """SELECT rule, sensor, site, category, peak_level, opened_at,
                                      suppressed
                               FROM alerts ORDER BY opened_at, rule, sensor"""
                        )
                    )
                    alerts = [
                        Raised(r.rule, r.sensor, r.site, r.category, int(r.peak_level),
                               r.opened_at.timestamp() - scenario.epoch0, r.suppressed)
                        for r in rows
                    ]  # fmt: skip
                    history = [
                        (r.site, r.at.timestamp() - scenario.epoch0, int(r.level))
                        for r in await conn.execute(
                            text("SELECT site, at, level FROM risk_history ORDER BY at, id")
                        )
                    ]
                    end = scenario.epoch0 + seconds(scenario.duration)
                    raised = await alert_store.raised_alerts(
                        conn, to_datetime(scenario.epoch0), to_datetime(end)
                    )
    report = score(scenario, alerts)
    score_risk(scenario, history, report)
    report.kpis = kpis.alarm_load(raised, scenario.epoch0, end)
    return report


def _message(message: Message, received: float) -> RawMessage:
    tenant, site, payload = message
    return RawMessage(
        payload=payload,
        source="scenario",
        received=received,
        topic=f"riskmon/v1/{tenant}/{site}/readings",
        tenant=tenant,
        site=site,
    )


def format_report(reports: list[Report]) -> str:
    lines = [
        "| scenario | domain | expected | matched | precision | recall | level accuracy "
        "| median delay | false process alerts / 1,000 sensor-days | result |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in [*reports, _total(reports)]:
        delay = f"{statistics.median(r.delays) / 60:.0f} min" if r.delays else "-"
        accuracy = f"{r.level_right / r.matched:.2f}" if r.matched else "-"
        lines.append(
            f"| {r.name} | {r.domain} | {r.expected} | {r.matched} | {r.precision:.2f} | "
            f"{r.recall:.2f} | {accuracy} | {delay} | {r.false_rate:.2f} | "
            f"{'ok' if r.ok else 'FAIL'} |"
        )
    lines += ["", *_kpi_table(reports)]
    for r in reports:
        for miss in r.missed:
            lines.append(f"- {r.name}: missed {miss}")
        for wrong in r.wrong_level + r.risk_wrong:
            lines.append(f"- {r.name}: {wrong}")
        if r.risk_expected:
            good = r.risk_expected - len(r.risk_wrong)
            lines.append(f"- {r.name}: site risk as expected {good} of {r.risk_expected}")
        if max(r.rows_per_hazard, default=0) > MAX_ROWS:
            lines.append(f"- {r.name}: {max(r.rows_per_hazard)} alert rows for one hazard")
        for a in r.forbidden:
            lines.append(f"- {r.name}: forbidden alert {a.rule} on {a.sensor or a.site}")
        for a in r.false_alerts:
            lines.append(
                f"- {r.name}: false {a.category} alert {a.rule} level {a.level} on "
                f"{a.sensor or a.site} at {a.opened / 3600:.1f} h"
            )
        if r.suppressed:
            lines.append(
                f"- {r.name}: {len(r.suppressed)} alerts suppressed by design (sensor in fault;"
                f" never shown): {_by_rule(r.suppressed)}"
            )
    return "\n".join(lines)


def _by_rule(alerts: list[Raised]) -> str:
    return ", ".join(f"{rule} {n}" for rule, n in sorted(Counter(a.rule for a in alerts).items()))


def _kpi_table(reports: list[Report]) -> list[str]:
    """Alarm load per scenario (ISA-18.2 / EEMUA 191, ``alerts.kpis``)."""
    lines = [
        "| scenario | alerts | per 10 min (mean / max) | floods | time in flood | chattering "
        "| stale | low / medium / high | rows per hazard (max) | top bad actor |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        k = r.kpis
        if not k:
            continue
        mix = " / ".join(f"{k['priority'][p]['percent']:.0f} %" for p in ("low", "medium", "high"))
        top = k["bad_actors"][0] if k["bad_actors"] else None
        actor = f"{top['rule']} on {top['sensor'] or top['site']} ({top['alerts']})" if top else "-"
        lines.append(
            f"| {r.name} | {k['alerts']} | {k['mean_per_10_minutes']:.3f} / "
            f"{k['max_per_10_minutes']} | {len(k['floods'])} | {k['percent_time_in_flood']:.2f} % "
            f"| {len(k['chattering'])} | {k['stale']} | {mix} | "
            f"{max(r.rows_per_hazard, default=0)} | {actor} |"
        )
    return lines


def _total(reports: list[Report]) -> Report:
    total = Report("total", "all", sum(r.sensor_days for r in reports))
    for r in reports:
        total.expected += r.expected
        total.matched += r.matched
        total.level_right += r.level_right
        total.delays += r.delays
        total.false_alerts += r.false_alerts
        total.forbidden += r.forbidden
        total.missed += r.missed
        total.wrong_level += r.wrong_level
        total.rows_per_hazard += r.rows_per_hazard
        total.raised += r.raised
        total.suppressed += r.suppressed
    return total


async def run_all(paths: list[Path]) -> list[Report]:
    reports = []
    with tempfile.TemporaryDirectory() as tmp, devservices.postgres(Path(tmp)) as server:
        for path in paths:
            scenario = Scenario.load(path)
            print(f"  {scenario.name}: {scenario.sensor_days:.0f} sensor-days ...", flush=True)
            reports.append(await run_scenario(scenario, server))
    return reports
