"""Readings: idempotent batched writes (binary COPY into a staging table, then
``INSERT ... ON CONFLICT DO NOTHING``), partition upkeep and range queries.

The COPY payload is built with numpy in one pass (``binary_copy``), so no per-row Python runs
on the hot path.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.clock import to_datetime
from monitor.model import ReadingBatch
from monitor.store import binary_copy, rollups
from monitor.store.db import raw_connection

_STAGE = "readings_stage"


def encode_copy(batch: ReadingBatch) -> bytes:
    return binary_copy.encode(
        [("int4", batch.sensor), ("timestamptz", batch.ts), ("float8", batch.value),
         ("int2", batch.quality), ("timestamptz", batch.received)]
    )  # fmt: skip


# Plain PostgreSQL: the rows actually inserted (not duplicates) and older than the rollups'
# watermark (late data) are folded into the 1 min and 1 h rollups in the same statement; the
# rest are folded by ``rollups.catch_up`` (see there: every stored reading counts once).
_INSERT_WITH_ROLLUPS = f"""WITH new AS (
    INSERT INTO readings SELECT * FROM {{source}} ON CONFLICT DO NOTHING
    RETURNING sensor_key, ts, value),
  late AS (SELECT * FROM new WHERE ts < {{upto}}),
  {rollups.fold("late")}
SELECT count(*) FROM new"""
_INSERT = """WITH new AS (
    INSERT INTO readings SELECT * FROM {source} ON CONFLICT DO NOTHING RETURNING 1)
SELECT count(*) FROM new"""
# Without COPY (servers that cannot take it, such as PGlite): one statement of arrays.
_UNNEST = """unnest(CAST(:k AS int4[]), CAST(:ts AS timestamptz[]), CAST(:v AS float8[]),
    CAST(:q AS int2[]), CAST(:rx AS timestamptz[]))"""
PARTITION_PREFIX, PARTITION_DAY = "readings_p", "%Y%m%d"  # readings_p20261129: one day
UNNEST_CHUNK = 500  # rows per statement: keeps each message small


class PartitionKeeper:
    """The readings layout the writer follows.  Plain PostgreSQL (``enabled``): daily range
    partitions created ahead of time, rollup tables behind a watermark (``rollups``).
    TimescaleDB: chunks and continuous aggregates are the server's.  ``copy`` False writes
    without COPY.  ``newest``: the newest event time written (where the rollups may follow)."""

    def __init__(self, enabled: bool, copy: bool = True) -> None:
        self.enabled = enabled
        self.copy = copy
        self.known: set[str] = set()
        self.newest = float("-inf")

    @property
    def insert_sql(self) -> str:
        return _INSERT_WITH_ROLLUPS if self.enabled else _INSERT

    async def ensure(self, conn: AsyncConnection, days: np.ndarray) -> None:
        if not self.enabled:
            return
        for day in np.unique(days):
            start = datetime.fromtimestamp(int(day) * 86400, UTC)
            name = f"{PARTITION_PREFIX}{start:{PARTITION_DAY}}"
            if name in self.known:
                continue
            end = start + timedelta(days=1)
            await conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF readings "
                    f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
                )
            )
            self.known.add(name)

    async def ensure_ahead(self, conn: AsyncConnection, now: float, days_ahead: int) -> None:
        today = int(now // 86400)
        await self.ensure(conn, np.arange(today - 1, today + days_ahead + 1))


async def write_readings(
    conn: AsyncConnection, batch: ReadingBatch, partitions: PartitionKeeper
) -> int:
    """Store a batch; rows already present (same sensor and ts) are skipped.  Returns the
    number of new rows.  Runs inside the caller's transaction."""
    if not len(batch):
        return 0
    await partitions.ensure(conn, (batch.ts // 86400).astype(np.int64))
    upto = await rollups.watermark(conn) if partitions.enabled else None
    partitions.newest = max(partitions.newest, float(batch.ts.max()))
    if not partitions.copy:
        return await _write_without_copy(conn, batch, partitions, upto)
    raw = await raw_connection(conn)
    async with raw.cursor() as cur:
        await cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} "
            "(sensor_key int4, ts timestamptz, value float8, quality int2, received_at timestamptz)"
            " ON COMMIT DELETE ROWS"
        )
        async with cur.copy(f"COPY {_STAGE} FROM STDIN (FORMAT BINARY)") as copy:
            await copy.write(encode_copy(batch))
        sql = partitions.insert_sql.format(source=_STAGE, upto="%(upto)s")
        await cur.execute(sql, {"upto": upto} if partitions.enabled else None)
        row = await cur.fetchone()
        return int(row[0]) if isinstance(row, tuple) else 0


async def _write_without_copy(
    conn: AsyncConnection, batch: ReadingBatch, partitions: PartitionKeeper, upto: datetime | None
) -> int:
    stored = 0
    sql = text(partitions.insert_sql.format(source=f"{_UNNEST} AS u", upto=":upto"))
    for i in range(0, len(batch), UNNEST_CHUNK):
        part = batch.take(np.arange(i, min(i + UNNEST_CHUNK, len(batch))))
        params = {
            "k": part.sensor.tolist(),
            "ts": [to_datetime(t) for t in part.ts.tolist()],
            "v": part.value.tolist(),
            "q": part.quality.tolist(),
            "rx": [to_datetime(t) for t in part.received.tolist()],
            **({"upto": upto} if upto is not None else {}),
        }
        stored += int((await conn.execute(sql, params)).scalar_one())
    return stored
