"""A replay after a restart goes through an alert's older versions again (the processor
replays from its snapshot's offset); the store keeps the newer version it has, counted by
``Alert.transitions``, and never holds two active alerts of one fingerprint meanwhile.

Before the count, a replay whose batch ended while an alert was still active, with a newer
alert of the same fingerprint active in the store, broke ``alerts_one_active`` and the
processor retried that batch for ever (the kill loops' 120 s timeouts)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from alerts.model import AlertEvent
from alerts.tracker import AlertTracker
from monitor.model import Category, Level, Signal
from monitor.store import alerts as alert_store
from monitor.store.db import open_engine
from monitor.store.migrations import migrate
from monitor.testing import temporary_database

pytestmark = pytest.mark.integration
LEVELS = [4, 3, 0, 2, 1]  # an alert opens, escalates, clears; a second opens and goes red


def stream(tracker: AlertTracker, start: int = 0, stop: int = len(LEVELS)) -> list[AlertEvent]:
    return [
        e
        for i in range(start, stop)
        for e in tracker.observe(
            Signal("gas.high", "g1", "s1", Level(LEVELS[i]), Category.PROCESS, 100.0 + i, 0.0),
            1000.0 + i,
        )
    ]


async def rows(db: str) -> set[tuple[object, ...]]:
    async with open_engine(db) as engine, engine.connect() as conn:
        result = await conn.execute(text("SELECT id, level, active, transitions FROM alerts"))
        return {tuple(r) for r in result}


async def test_a_replay_of_older_versions_leaves_the_newer_rows_alone(pg_server: str) -> None:
    async with temporary_database(pg_server) as db, open_engine(db) as engine:
        await migrate(engine)
        live = stream(AlertTracker())
        async with engine.begin() as conn:
            await alert_store.write_events(conn, live)
        after_live = await rows(db)
        replay = AlertTracker()  # restored from a snapshot taken before the first reading
        for start, stop in ((0, 2), (2, 4), (4, 5)):  # the replay's batches end mid-way
            async with engine.begin() as conn:
                await alert_store.write_events(conn, stream(replay, start, stop))
            assert await rows(db) == after_live
    first, second = (
        {e.alert.id for e in live if e.alert.opened_at == 100.0},
        {e.alert.id for e in live if e.alert.opened_at == 103.0},
    )
    assert len(first) == len(second) == 1
    assert {(r[0], r[2]) for r in after_live} == {(*first, False), (*second, True)}
