"""Store benchmark (``make bench``): at least 10 million readings over 30 days in PostgreSQL
(plain path: daily partitions, rollups behind a watermark), then the readings API asked for a
30-day range of one sensor, served from the rollups.  Prints a Markdown table; ``--out FILE``
also writes it.  Query figures are medians of ``--repeat`` requests."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import yaml

from monitor import devservices
from monitor.config import Settings
from monitor.model import ReadingBatch
from monitor.store import rollups
from monitor.store.db import ensure_database, open_engine
from monitor.store.migrations import migrate
from monitor.store.readings import PartitionKeeper, write_readings
from monitor.testing import running_service, temporary_database

DAY = 86400.0


def _config(path: Path, sensors: int) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "sites": [{"id": "b1", "name": "bench", "tenant": "city", "kind": "mine"}],
                "sensors": [
                    {"id": f"d{i:04d}", "site": "b1", "kind": "displacement", "unit": "mm",
                     "expected_interval_s": 60}
                    for i in range(sensors)
                ],
            }
        )
    )  # fmt: skip


async def run(args: argparse.Namespace) -> list[str]:
    per_sensor = int(30 * DAY / args.interval)
    sensors = -(-args.readings // per_sensor)
    end = time.time() // 3600 * 3600
    start = end - 30 * DAY
    with tempfile.TemporaryDirectory() as tmp, devservices.postgres(Path(tmp)) as server:
        async with temporary_database(server, "riskmon_bench") as url:
            await ensure_database(url)
            cfg = Path(tmp) / "bench.yaml"
            _config(cfg, sensors)
            settings = Settings(
                database_url=url, mqtt_url="", config=cfg, rule_packs=[], http_port=0
            )
            async with running_service(settings) as svc:
                keys = np.array(
                    [svc.runtime.registry.keys[f"d{i:04d}"] for i in range(sensors)], np.int32
                )
            # Load with the service's own writer (COPY, partitions, rollups).
            async with open_engine(url) as db:
                await migrate(db)
                partitions = PartitionKeeper(enabled=True)
                t0 = time.perf_counter()
                written = 0
                rng = np.random.default_rng(1)
                step = args.batch // sensors
                for i in range(0, per_sensor, step):
                    n = min(step, per_sensor - i)
                    ts = start + (i + np.arange(n)) * args.interval
                    batch = ReadingBatch(
                        np.repeat(keys, n),
                        np.tile(ts, sensors),
                        rng.normal(100, 5, n * sensors),
                        np.zeros(n * sensors, np.int16),
                        np.tile(ts, sensors),
                    )
                    async with db.begin() as conn:
                        written += await write_readings(conn, batch, partitions)
                    due = rollups.due(partitions.newest, 120.0)
                    if due is not None:  # the rollups catch up, as the timer does
                        await rollups.catch_up(db, due)
                    print(f"\r  loaded {written:,} readings", end="", file=sys.stderr)
                await rollups.catch_up(db, datetime(2100, 1, 1, tzinfo=UTC))
                load_s = time.perf_counter() - t0
                print(file=sys.stderr)
                async with db.connect() as conn:
                    from sqlalchemy import text

                    await conn.execute(text("ANALYZE readings_1h_t"))
                    await conn.execute(text("ANALYZE readings_1m_t"))
            async with running_service(settings) as svc, svc.client(timeout=120) as api:
                figures = {}
                for bucket in ("auto", "1m", "raw"):
                    params = {"from": start, "to": end, "bucket": bucket, "limit": 100_000}
                    times, rows = [], 0
                    for _ in range(args.repeat):
                        t = time.perf_counter()
                        answer = await api.get("/api/v1/sensors/d0000/readings", params=params)
                        times.append(time.perf_counter() - t)
                        body = answer.json()
                        rows = len(body["readings"])
                    figures[bucket] = (body["bucket"], rows, statistics.median(times))
    lines = [
        "# Store benchmark (make bench)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; PostgreSQL (plain path) on the same machine.",
        f"Dataset: {written:,} readings, {sensors} sensors, one every {args.interval:g} s for 30 "
        f"days; loaded with the service's writer (binary COPY, daily partitions) and the rollups' "
        f"catch-up after each batch in {load_s:.0f} s ({written / load_s:,.0f} readings/s).",
        "",
        f"`GET /api/v1/sensors/{{id}}/readings` over 30 days, median of {args.repeat}:",
        "",
        "| bucket asked | bucket used | rows | median time |",
        "|---|---|---|---|",
    ]
    for asked, (used, rows, median) in figures.items():
        lines.append(f"| {asked} | {used} | {rows:,} | {median * 1000:.1f} ms |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--readings", type=int, default=10_000_000)
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument("--batch", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    lines = asyncio.run(run(args))
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
