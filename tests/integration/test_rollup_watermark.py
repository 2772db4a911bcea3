"""The rollups behind a watermark count every stored reading exactly once (``store.rollups``).

Writers (in order, late, redelivered) and catch-ups (forwards, backwards, to the same place)
run concurrently on their own connections to PostgreSQL, in random interleavings; at the end a
last catch-up takes every reading in.  The 1 min and 1 h rollups must then equal the
aggregates of the readings table, row for row.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.clock import to_datetime
from monitor.store import rollups
from monitor.store.db import open_engine
from monitor.store.migrations import migrate
from monitor.store.readings import PartitionKeeper, write_readings
from monitor.testing import temporary_database
from tests.integration.store_paths import batch

pytestmark = pytest.mark.integration
T0 = 1_750_000_000.0 - 1_750_000_000.0 % 3600
_TRUTH = {
    b: f"""SELECT sensor_key, date_bin(interval '{b}', ts, {rollups.ORIGIN}) AS bucket,
            count(*) AS count, round(sum(value)::numeric, 6) AS sum, min(value) AS min,
            max(value) AS max, max(ts) AS last_ts, (array_agg(value ORDER BY ts DESC))[1]
            FROM readings GROUP BY 1, 2 ORDER BY 1, 2"""
    for b in ("1 minute", "1 hour")
}
_KEPT = """SELECT sensor_key, bucket, count, round(sum::numeric, 6) AS sum, min, max, last_ts,
           last FROM readings_{b}_t ORDER BY 1, 2"""

# a step: ("write", first reading, how many, late shift in s) or ("advance", minutes from T0)
steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("write"), st.integers(0, 400), st.integers(1, 60), st.sampled_from([0, 0, 900])
        ),
        st.tuples(st.just("advance"), st.integers(-5, 80), st.just(0), st.just(0)),
    ),
    min_size=3,
    max_size=14,
)


async def _scenario(server: str, plan: list[tuple[str, int, int, int]], seed: int) -> None:
    rng = random.Random(seed)
    async with temporary_database(server) as url, open_engine(url) as db:
        await migrate(db)
        partitions = PartitionKeeper(enabled=True)
        async with db.begin() as conn:  # as the service does at start
            await partitions.ensure_ahead(conn, T0, 1)

        async def run(step: tuple[str, int, int, int]) -> None:
            await asyncio.sleep(rng.random() * 0.01)
            kind, first, n, late = step
            if kind == "advance":  # in one step, or in steps of a few readings
                if rng.random() < 0.5:
                    async with db.begin() as conn:
                        await rollups.advance(conn, to_datetime(T0 + 60 * first))
                else:
                    await rollups.catch_up(db, to_datetime(T0 + 60 * first), chunk=7)
                return
            i = np.arange(first, first + n)
            ts = T0 + 10.0 * i - late  # two sensors every 10 s; a late copy 15 min back
            keys = (i % 2) + 1
            async with db.begin() as conn:
                await write_readings(conn, batch(keys, ts, np.sin(i) * 10 + keys), partitions)

        await asyncio.gather(*(run(s) for s in plan))
        await _views_agree(db)  # wherever the watermark is, the views are up to date
        await rollups.catch_up(db, datetime(2100, 1, 1, tzinfo=UTC))
        async with db.connect() as conn:
            for b, table in (("1 minute", "1m"), ("1 hour", "1h")):
                truth = [tuple(r) for r in await conn.execute(text(_TRUTH[b]))]
                kept = [tuple(r) for r in await conn.execute(text(_KEPT.format(b=table)))]
                assert kept == truth, table
        await _views_agree(db)


_VIEW_TRUTH = """SELECT sensor_key, date_bin(interval '{b}', ts, {origin}) AS bucket, count(*),
    round(avg(value)::numeric, 6), min(value), max(value), (array_agg(value ORDER BY ts DESC))[1]
    FROM readings GROUP BY 1, 2 ORDER BY 1, 2"""
_VIEW = """SELECT sensor_key, bucket, count, round(mean::numeric, 6), min, max, last
    FROM readings_{b} ORDER BY 1, 2"""


async def _views_agree(db: AsyncEngine) -> None:
    async with db.connect() as conn:
        for b, view in (("1 minute", "1m"), ("1 hour", "1h")):
            truth = await conn.execute(text(_VIEW_TRUTH.format(b=b, origin=rollups.ORIGIN)))
            seen = await conn.execute(text(_VIEW.format(b=view)))
            assert [tuple(r) for r in seen] == [tuple(r) for r in truth], view


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(plan=steps, seed=st.integers(0, 1000))
def test_every_reading_is_counted_once_in_any_interleaving(
    pg_server: str, plan: list[tuple[str, int, int, int]], seed: int
) -> None:
    asyncio.run(_scenario(pg_server, plan, seed))


async def test_a_late_write_waits_for_a_catch_up_in_flight(database_url: str) -> None:
    """A catch-up holds the watermark; a write of a reading behind the new watermark that
    comes meanwhile waits, then folds the reading itself (it was not there to be folded)."""
    async with open_engine(database_url) as db:
        await migrate(db)
        partitions = PartitionKeeper(enabled=True)
        async with db.begin() as conn:
            await write_readings(conn, batch([1], [T0 + 30], [1.0]), partitions)
        async with db.begin() as catch_up:
            assert (await rollups.advance(catch_up, to_datetime(T0 + 3600)))[1] == 1
            write = asyncio.create_task(_write(db, partitions, T0 + 90, 2.0))
            await asyncio.sleep(0.3)
            assert not write.done()  # waiting for the watermark
        await asyncio.wait_for(write, 5)
        async with db.connect() as conn:
            row = (await conn.execute(text("SELECT count, sum FROM readings_1h_t"))).one()
        assert tuple(row) == (2, 3.0)


async def _write(db: AsyncEngine, partitions: PartitionKeeper, ts: float, value: float) -> None:
    async with db.begin() as conn:
        await write_readings(conn, batch([1], [ts], [value]), partitions)
