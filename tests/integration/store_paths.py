"""Both store paths for parameterised tests: plain PostgreSQL (a temporary database on the
local server) and TimescaleDB (PGlite with TimescaleDB, a fresh server per test)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor import devservices
from monitor.model import ReadingBatch
from monitor.store import rollups
from monitor.store.db import open_engine
from monitor.store.migrations import migrate, uses_timescale
from monitor.store.readings import PartitionKeeper, write_readings
from monitor.testing import temporary_database

PATHS = ["postgres", "timescale"]


@dataclass
class Store:
    db: AsyncEngine
    partitions: PartitionKeeper
    timescale: bool

    async def write(self, batch: ReadingBatch) -> int:
        async with self.db.begin() as conn:
            return await write_readings(conn, batch, self.partitions)

    async def refresh(self) -> None:
        """Continuous aggregates are real-time; refreshing materializes them like the
        policy would.  On plain PostgreSQL the rollups catch up with every stored reading, as
        the service's timer does once they are older than its lag."""
        if not self.timescale:
            await rollups.catch_up(self.db, datetime(2100, 1, 1, tzinfo=UTC))
        if self.timescale:
            async with self.db.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                for view in ("readings_1m", "readings_1h"):
                    await conn.execute(
                        text(f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")
                    )


@contextlib.asynccontextmanager
async def store(path: str, pg_server: str) -> AsyncIterator[Store]:
    if path == "postgres":
        async with temporary_database(pg_server) as url, open_engine(url) as db:
            await migrate(db)
            yield Store(db, PartitionKeeper(enabled=True), timescale=False)
        return
    with devservices.pglite_timescale() as url:
        async with open_engine(url, single=True) as db:
            await migrate(db)
            assert await uses_timescale(db)
            yield Store(db, PartitionKeeper(enabled=False, copy=False), timescale=True)


def batch(keys: np.ndarray, ts: np.ndarray, values: np.ndarray) -> ReadingBatch:
    n = len(ts)
    return ReadingBatch(
        np.asarray(keys, np.int32), np.asarray(ts, float), np.asarray(values, float),
        np.zeros(n, np.int16), np.asarray(ts, float),
    )  # fmt: skip
