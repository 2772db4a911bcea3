"""The alert lifecycle's invariants on PostgreSQL, through the production code.

The machine of ``tests/lifecycle_machine.py`` drives a real runtime (``build_runtime``: rules,
pipeline, tracker, ``Operations``, store) on its own database: readings go through the
pipeline, operator actions through ``Operations``, ticks through the pipeline's timer step,
and a restart closes the runtime and builds a new one from the store.  PostgreSQL itself
enforces the partial unique index and the event key; the invariants read the tables.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import orjson
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from sqlalchemy import text

from alerts.history import FIELDS, HistoryEvent
from alerts.model import Alert, AlertEvent
from alerts.tracker import AlertTracker
from ingest.raw import RawMessage
from monitor.app import Runtime, build_runtime
from monitor.clock import ManualClock
from monitor.config import Settings
from monitor.testing import temporary_database
from tests.lifecycle_machine import SENSORS, LifecycleMachine, World

pytestmark = pytest.mark.integration
T = TypeVar("T")

CONFIG = f"""
sites:
  - {{id: s1, name: "Tank farm", tenant: t1, kind: major_hazard_source, hazard_grade: 1}}
sensors:
{"".join(f'  - {{id: {s}, site: s1, kind: gas_test, unit: "%LEL"}}{chr(10)}' for s in SENSORS)}
rules:
  - {{id: gas.high, type: threshold, selector: {{kind: gas_test}},
     levels: {{4: 10, 3: 25, 2: 50, 1: 75}}}}
  - {{id: gas.range, type: threshold, selector: {{kind: gas_test}}, levels: {{3: 100.01}},
     category: sensor_health}}
"""


class PostgresWorld(World):
    server: ClassVar[str]
    config: ClassVar[Path]
    loop: ClassVar[asyncio.AbstractEventLoop]

    def __init__(self) -> None:
        self.clock = ManualClock(1_750_000_000.0)
        self.captured: list[AlertEvent] = []
        self.database = temporary_database(self.server)
        url = self._run(self.database.__aenter__())
        self.settings = Settings(
            database_url=url, mqtt_url="", config=self.config, rule_packs=(), admin_token="t"
        )
        self._run(self._open())

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a step; a step the store never takes fails here instead of hanging."""
        try:
            return self.loop.run_until_complete(asyncio.wait_for(coro, 20))
        except TimeoutError:
            failure = self.rt.pipeline.store_failure
            raise AssertionError(f"a step did not complete; the store says {failure}") from None

    async def _open(self) -> None:
        self.stack = contextlib.AsyncExitStack()
        self.rt: Runtime = await self.stack.enter_async_context(
            build_runtime(self.settings, clock=self.clock)
        )
        self.rt.pipeline.listeners.append(self.captured.extend)

    @property  # type: ignore[override]
    def tracker(self) -> AlertTracker:
        return self.rt.tracker

    def now(self) -> float:
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def _published(self, coro: Coroutine[Any, Any, object]) -> list[AlertEvent]:
        self.captured.clear()
        self._run(coro)
        return list(self.captured)

    def reading(self, sensor: str, value: float) -> list[AlertEvent]:
        body = orjson.dumps({"sensor": sensor, "ts": self.now(), "value": value})
        return self._published(self.rt.pipeline.ingest([RawMessage(body, "http", self.now())]))

    def act(self, alert_id: str, action: Callable[[Alert, float], AlertEvent]) -> AlertEvent:
        (event,) = self._published(self.rt.ops.act(alert_id, action))
        return event

    def tick(self) -> list[AlertEvent]:
        return self._published(self.rt.pipeline.tick())

    def restart(self) -> None:
        self._run(self.stack.aclose())
        self._run(self._open())

    async def _query(self, sql: str) -> list[dict[str, Any]]:
        async with self.rt.db.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(text(sql))]

    def stored(self) -> dict[str, dict[str, Any]]:
        rows = self._run(
            self._query(
                f"SELECT id, fingerprint, {', '.join(FIELDS)}, (acked_at IS NULL AND state "
                "NOT IN ('closed', 'reviewed') AND NOT suppressed) AS waiting FROM alerts"
            )
        )
        return {r["id"]: r for r in rows}

    def history(self) -> dict[str, list[HistoryEvent]]:
        rows = self._run(
            self._query("SELECT alert_id, kind, level, actor, detail FROM alert_events ORDER BY id")
        )
        out: dict[str, list[HistoryEvent]] = {}
        for r in rows:
            event = HistoryEvent(r["kind"], r["level"], r["actor"], r["detail"])
            out.setdefault(r["alert_id"], []).append(event)
        return out

    def close(self) -> None:
        self._run(self.stack.aclose())
        self._run(self.database.__aexit__(None, None, None))


class PostgresLifecycle(LifecycleMachine):
    world_factory = PostgresWorld


@pytest.mark.timeout(600)
def test_lifecycle_invariants_on_postgres(pg_server: str, tmp_path: Path) -> None:
    config = tmp_path / "lifecycle.yaml"
    config.write_text(CONFIG)
    PostgresWorld.server, PostgresWorld.config = pg_server, config
    PostgresWorld.loop = asyncio.new_event_loop()
    try:
        run_state_machine_as_test(
            PostgresLifecycle,
            settings=settings(
                max_examples=25,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
    finally:
        PostgresWorld.loop.close()
