"""The timeseries store on both paths, with the same tests: plain PostgreSQL and TimescaleDB
(proven on the PGlite TimescaleDB build): layout and policies, rollups that agree with the raw
readings, retention that keeps the configured days and drops older data."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from monitor.store import retention
from monitor.store.series import pick_bucket, query_series
from tests.integration.store_paths import PATHS, batch, store

pytestmark = pytest.mark.integration
NOW = 1_789_948_800.0  # 2026-09-21 00:00 UTC


def dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@pytest.mark.parametrize("path", PATHS)
async def test_layout_and_policies(path: str, pg_server: str) -> None:
    async with store(path, pg_server) as s, s.db.begin() as conn:
        if s.timescale:
            await retention.set_policy(conn, 45)
            jobs = {
                (r.proc_name, r.hypertable_name): r.config
                for r in await conn.execute(
                    text(
                        "SELECT proc_name, hypertable_name, config FROM timescaledb_information.jobs"
                    )
                )
            }
            assert jobs[("policy_retention", "readings")]["drop_after"] == "45 days"
            assert ("policy_compression", "readings") in jobs
            views = {
                r[0]
                for r in await conn.execute(
                    text("SELECT view_name FROM timescaledb_information.continuous_aggregates")
                )
            }
            assert views == {"readings_1m", "readings_1h"}
            seg = await conn.execute(
                text(
                    "SELECT attname FROM timescaledb_information.compression_settings"
                    " WHERE hypertable_name = 'readings' AND segmentby_column_index = 1"
                )
            )
            assert seg.scalar_one() == "sensor_key"
        else:
            await s.partitions.ensure_ahead(conn, NOW, 3)
            parts = await conn.execute(
                text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'readings'::regclass")
            )
            assert parts.scalar_one() == 5  # yesterday, today and three days ahead
            for view in ("readings_1m", "readings_1h"):
                await conn.execute(text(f"SELECT * FROM {view} LIMIT 1"))


@pytest.mark.parametrize("path", PATHS)
async def test_rollups_agree_with_raw_readings(path: str, pg_server: str) -> None:
    rng = np.random.default_rng(2)
    ts = NOW - 2 * 86400 + np.arange(0, 2 * 86400, 15.0)  # two days every 15 s, two sensors
    values = {k: 10 * k + rng.normal(0, 1, ts.size) for k in (1, 2)}
    async with store(path, pg_server) as s:
        for k in (1, 2):
            for i in range(0, ts.size, 4000):
                part = slice(i, i + 4000)
                stored = await s.write(batch(np.full(ts[part].size, k), ts[part], values[k][part]))
                assert stored == ts[part].size
        # A redelivered chunk is stored once and counted once.
        assert await s.write(batch(np.full(100, 1), ts[:100], values[1][:100])) == 0
        await s.refresh()
        async with s.db.connect() as conn:
            start, end = dt(ts[0]), dt(ts[-1] + 1)
            hourly = await query_series(conn, [1, 2], start, end, "1h", 100_000)
            minutes = await query_series(conn, [1], start, end, "1m", 100_000)
            raw = await query_series(conn, [1], start, dt(ts[0] + 3600), "raw", 100_000)
        for k in (1, 2):
            rows = hourly[k]
            assert len(rows) == 48
            first = values[k][:240]  # the first hour: 240 readings
            assert rows[0]["count"] == 240
            assert rows[0]["min"] == pytest.approx(first.min())
            assert rows[0]["max"] == pytest.approx(first.max())
            assert rows[0]["value"] == pytest.approx(first.mean())
            assert rows[0]["last"] == pytest.approx(first[-1])
            assert sum(r["count"] for r in rows) == ts.size
        assert len(minutes[1]) == 2 * 1440
        assert minutes[1][1]["value"] == pytest.approx(values[1][4:8].mean())
        assert [r["value"] for r in raw[1]] == pytest.approx(list(values[1][:240]))


def test_bucket_choice() -> None:
    start = dt(NOW)
    assert pick_bucket(start, start + timedelta(hours=24), 60) == "raw"
    assert pick_bucket(start, start + timedelta(hours=24), 1) == "1m"
    assert pick_bucket(start, start + timedelta(days=30), 60) == "1h"


@pytest.mark.parametrize("path", PATHS)
async def test_retention_keeps_the_configured_days_and_drops_older(
    path: str, pg_server: str
) -> None:
    days = 30
    now = time.time() // 3600 * 3600  # the Timescale policy judges by the server's clock
    ts = now - 100 * 86400 + np.arange(0, 100 * 86400, 3600.0)  # 100 days, hourly
    async with store(path, pg_server) as s:
        async with s.db.begin() as conn:
            await s.partitions.ensure(conn, (ts // 86400).astype(np.int64))
        await s.write(batch(np.ones(ts.size), ts, np.arange(ts.size, dtype=float)))
        async with s.db.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            if s.timescale:
                await retention.set_policy(conn, days)
                job = await conn.execute(
                    text(
                        "SELECT job_id FROM timescaledb_information.jobs"
                        " WHERE proc_name = 'policy_retention'"
                    )
                )
                # The server runs the policy on its schedule; run it at once.
                await conn.execute(text(f"CALL run_job({job.scalar_one()})"))
            else:
                dropped = await retention.drop_expired(conn, days, now)
                assert dropped
            kept = await conn.execute(
                text("SELECT min(ts), count(*) FROM readings WHERE sensor_key = 1")
            )
            oldest, count = kept.one()
        cutoff = now - days * 86400
        assert oldest.timestamp() <= cutoff  # at least the configured days are kept
        assert oldest.timestamp() >= cutoff - 2 * 86400  # older data is dropped (whole days)
        assert count >= days * 24
