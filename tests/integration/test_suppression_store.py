"""Suppression by design through the production runtime and PostgreSQL (``alerts.suppression``).

A gas detector whose loop reads below zero is in fault (a health rule that suppresses, with an
off-delay).  While it is, a blue reading opens a process alert suppressed: stored, off the
operators' list, out of the alarm load, kept across a restart.  When the fault clears and the
blue still holds, the alert is shown; a red is never suppressed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text

from alerts.history import FIELDS, HistoryEvent, replay
from alerts.model import AlertEvent, EventKind
from ingest.raw import RawMessage
from monitor.app import Runtime, build_runtime
from monitor.clock import ManualClock, to_datetime
from monitor.config import Settings
from monitor.store import alerts as alert_store

pytestmark = pytest.mark.integration

CONFIG = """
sites:
  - {id: s1, name: "Tank farm", tenant: t1, kind: major_hazard_source, hazard_grade: 1}
sensors:
  - {id: g1, site: s1, kind: gas_test, unit: "%LEL"}
rules:
  - {id: gas.high, type: threshold, selector: {kind: gas_test},
     levels: {4: 10, 3: 25, 2: 50, 1: 75}}
  - {id: gas.loop, type: threshold, selector: {kind: gas_test}, direction: low,
     levels: {4: -0.5}, off_delay_s: 600, category: sensor_health, suppresses: true}
"""
T0 = 1_750_000_000.0


class Node:
    def __init__(self, settings: Settings, clock: ManualClock) -> None:
        self.settings, self.clock = settings, clock
        self.events: list[AlertEvent] = []

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Runtime]:
        async with build_runtime(self.settings, clock=self.clock) as rt:
            rt.pipeline.listeners.append(self.events.extend)
            yield rt

    async def read(self, rt: Runtime, at: float, value: float) -> list[AlertEvent]:
        self.clock.set(T0 + at)
        before = len(self.events)
        body = orjson.dumps({"sensor": "g1", "ts": T0 + at, "value": value})
        await rt.pipeline.ingest([RawMessage(body, "http", T0 + at)])
        await rt.pipeline.flushed()
        return self.events[before:]


async def _rows(rt: Runtime) -> dict[str, dict[str, object]]:
    async with rt.db.connect() as conn:
        listed = await alert_store.list_alerts(
            conn, states=None, level=None, site=None, since=None, limit=100
        )
    return {str(r["rule"]): r for r in listed}


async def _history_agrees(rt: Runtime) -> None:
    async with rt.db.connect() as conn:
        stored = {
            r.id: r._mapping
            for r in await conn.execute(text(f"SELECT id, {', '.join(FIELDS)} FROM alerts"))
        }
        events = await conn.execute(
            text("SELECT alert_id, kind, level, actor, detail FROM alert_events ORDER BY id")
        )
        history: dict[str, list[HistoryEvent]] = {}
        for e in events:
            history.setdefault(e.alert_id, []).append(
                HistoryEvent(e.kind, e.level, e.actor, e.detail)
            )
    for alert_id, mine in history.items():
        assert replay(mine) == {f: stored[alert_id][f] for f in FIELDS}


async def test_a_sensor_in_fault_does_not_page_and_is_shown_when_it_recovers(
    database_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "suppress.yaml"
    config.write_text(CONFIG)
    settings = Settings(
        database_url=database_url, mqtt_url="", config=config, rule_packs=(), admin_token="t"
    )
    node = Node(settings, ManualClock(T0))
    async with node.running() as rt:
        await node.read(rt, 0, -2.0)  # the loop reads below zero: in fault
        events = await node.read(rt, 60, 12.0)  # blue while the fault holds (off-delay)
        assert [(e.kind, e.alert.rule, e.alert.suppressed) for e in events] == [
            (EventKind.OPENED, "gas.high", True)
        ]
        rows = await _rows(rt)
        assert rows["gas.high"]["suppressed"] and rows["gas.high"]["isa_state"] == "suppressed"
        assert not rows["gas.high"]["waiting"]
        async with rt.db.connect() as conn:
            load = await alert_store.raised_alerts(conn, to_datetime(T0), to_datetime(T0 + 900))
        assert [a.source[0] for a in load] == ["gas.loop"]  # the health alert stands for it
        rt.pipeline.update_kpis(T0 + 60)
        sample = rt.metrics.registry.get_sample_value
        assert sample("riskmon_alerts_active", {"level": "4"}) == 1  # gas.loop, not gas.high
        assert sample("riskmon_alerts_raised_last_10m") == 1
    async with node.running() as rt:  # a restart keeps it suppressed
        assert rt.tracker.active["gas.high|g1"].suppressed
        await node.read(rt, 300, 13.0)
        events = await node.read(rt, 700, 12.0)  # 640 s without a fault reading: it clears
        kinds = [(e.kind, e.alert.rule) for e in events]
        assert (EventKind.RESOLVED, "gas.loop") in kinds
        assert kinds[-1] == (EventKind.UNSUPPRESSED, "gas.high")
        rows = await _rows(rt)
        assert not rows["gas.high"]["suppressed"] and rows["gas.high"]["waiting"]
        assert rows["gas.high"]["isa_state"] == "unack_active"
        # its SLA timers start when it is shown, in memory and in the store alike
        shown = rt.tracker.active["gas.high|g1"]
        assert shown.raised_at == T0 + 700 and rows["gas.high"]["raised_at"] == to_datetime(
            T0 + 700
        )
        # in fault again, the red is raised at once (suspect), never suppressed
        await node.read(rt, 800, -2.0)
        events = await node.read(rt, 860, 80.0)
        red = [e for e in events if e.alert.rule == "gas.high"][-1]
        assert red.level == 1 and not red.alert.suppressed and red.alert.suspect
        await _history_agrees(rt)
