"""The live risk of every site (``alerts.risk``): recomputed for the sites whose alerts changed
(the pipeline's events) at each timer tick, and for every site every ``interval_s`` (time and
other nodes move it too).  A change of level or of its explanation is stored in
``risk_history``, handed to the listeners (the live stream's ``event: risk``) and counted in
the gauges; a change of level that holds for ``hold_s`` is notified (``notify``)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alerts.model import Alert, AlertEvent
from alerts.risk import History, Hold, RiskModel, RiskModels, SiteRisk, assess, hold_step
from monitor.clock import Clock, to_datetime
from monitor.model import Site
from monitor.registry import Registry
from monitor.store import alerts as alert_store
from monitor.store import risk_models as risk_store

log = logging.getLogger(__name__)
RiskListener = Callable[[SiteRisk, str | None], None]  # the risk, its district
RiskNotify = Callable[[SiteRisk, str | None, int], None]  # and the level told before


async def assess_sites(
    conn: AsyncConnection, registry: Registry, sites: list[Site], now: float, m: RiskModels
) -> list[SiteRisk]:
    """The risk of these sites now, from the store's active alerts and 30-day history."""
    active = await alert_store.load_active(conn, [s.id for s in sites])
    history = await alert_store.site_history(conn, to_datetime(now))
    by_site: dict[str, list[Alert]] = {}
    for alert in active:
        by_site.setdefault(alert.site, []).append(alert)
    sensors = Counter(s.site for s in registry.sensors.values())
    return [
        assess(s, by_site.get(s.id, []), sensors[s.id], History(**history.get(s.id, {})), now, m)
        for s in sites
    ]


def models_from(rows: dict[str, tuple[dict[str, Any], int]]) -> RiskModels:
    """The stored models ("default" or a site kind -> spec, version) over the defaults."""
    models = RiskModels()
    for name, (spec, version) in rows.items():
        models = models.with_model(name, RiskModel.model_validate(spec), version)
    return models


def _identity(risk: SiteRisk | None) -> tuple[Any, ...] | None:
    """What a stored change is: the level and the factors that set it (not the score, which
    moves with every minute a warning waits)."""
    if risk is None:
        return None
    return (risk.level, tuple((f.name, f.value) for f in risk.factors if f.name != "score"))


class RiskMonitor:
    def __init__(
        self,
        db: AsyncEngine,
        registry: Registry,
        clock: Clock,
        gauge: Gauge,
        interval_s: float = 60.0,
        models: RiskModels | None = None,
        notify: RiskNotify | None = None,
        hold_s: float = 300.0,
    ) -> None:
        self.db, self.registry, self.clock, self.gauge = db, registry, clock, gauge
        self.interval_s, self.models = interval_s, models or RiskModels()
        self.notify, self.hold_s, self.hold = notify, hold_s, Hold()
        self._held: dict[str, SiteRisk] = {}  # the assessment of each pending level
        self.current: dict[str, SiteRisk] = {}
        self.dirty: set[str] = set()
        self.listeners: list[RiskListener] = []
        self._full_at = -float("inf")

    def reassess(self) -> None:
        """Every site at the next tick (a model changed)."""
        self._full_at = -float("inf")

    def on_events(self, events: list[AlertEvent]) -> None:
        """A pipeline listener: the sites whose alerts changed are assessed at the next tick."""
        self.dirty.update(e.alert.site for e in events)

    async def tick(self) -> list[SiteRisk]:
        """Assess the changed sites (every site once ``interval_s`` has passed); store, emit
        and count the changes.  Returns them."""
        now = self.clock.now()
        full = now - self._full_at >= self.interval_s
        ids = set(self.registry.sites) if full else self.dirty & set(self.registry.sites)
        self.dirty.clear()
        risks: list[SiteRisk] = []
        changed: list[SiteRisk] = []
        if ids:
            sites = [self.registry.sites[i] for i in sorted(ids)]
            async with self.db.begin() as conn:
                if full:  # another node may have changed a model
                    self.models = models_from(await risk_store.load(conn))
                risks = await assess_sites(conn, self.registry, sites, now, self.models)
                changed = [r for r in risks if _identity(r) != _identity(self.current.get(r.site))]
                if changed:
                    await _store(conn, changed)
        if full:
            self._full_at = now
        for risk in risks:
            self.current[risk.site] = risk
        for risk in changed:
            district = self.registry.sites[risk.site].district
            for listener in self.listeners:
                listener(risk, district)
        self._tell(risks, now)
        if ids:
            self._count()
        return changed

    def _tell(self, risks: list[SiteRisk], now: float) -> None:
        """Notify the levels that held (``alerts.risk.hold_step``), each with the assessment
        that gave it (a level released by a newer assessment is told as it was)."""
        told = dict(self.hold.notified)
        self.hold, due = hold_step(self.hold, {r.site: r.level for r in risks}, now, self.hold_s)
        for site in due:
            held = self._held.pop(site, None)
            risk = held if held is not None and held.level == self.hold.notified[site] else None
            risk = risk or self.current.get(site)
            if self.notify is not None and risk is not None and site in self.registry.sites:
                self.notify(risk, self.registry.sites[site].district, told[site])
        for r in risks:
            if self.hold.pending.get(r.site, (None, 0.0))[0] == r.level:
                self._held[r.site] = r

    def _count(self) -> None:
        counts = Counter(
            (str(r.level), self.registry.sites[r.site].district or "")
            for r in self.current.values()
            if r.site in self.registry.sites
        )
        self.gauge.clear()
        for (level, district), n in counts.items():
            self.gauge.labels(level, district).set(n)


async def _store(conn: AsyncConnection, risks: list[SiteRisk]) -> None:
    """One row per change (two at one instant are two rows, in order)."""
    await conn.execute(
        text(
            "INSERT INTO risk_history (site, at, level, score, factors) VALUES "
            "(:site, :at, :level, :score, CAST(:factors AS jsonb))"
        ),
        [
            {
                "site": r.site, "at": to_datetime(r.at), "level": r.level, "score": r.score,
                "factors": json.dumps([f.as_dict() for f in r.factors], ensure_ascii=False),
            }
            for r in risks
        ],
    )  # fmt: skip


async def risk_history(
    conn: AsyncConnection, site: str, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT at, level, score, factors FROM risk_history WHERE site = :site"
            " AND (CAST(:s AS timestamptz) IS NULL OR at >= :s)"
            " AND (CAST(:e AS timestamptz) IS NULL OR at <= :e) ORDER BY at, id"
        ),
        {"site": site, "s": start, "e": end},
    )
    return [
        {"at": r.at.isoformat(), "level": r.level, "score": round(r.score, 2), "factors": r.factors}
        for r in rows
    ]
