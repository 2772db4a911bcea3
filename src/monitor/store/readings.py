"""Readings: idempotent batched writes (binary COPY into a staging table, then
``INSERT ... ON CONFLICT DO NOTHING``), partition upkeep and range queries.

The COPY payload is built with numpy in one pass: PostgreSQL's binary format is a fixed-width
record per row for these column types, so no per-row Python runs on the hot path.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.model import ReadingBatch
from monitor.store.db import raw_connection

PG_EPOCH = 946_684_800.0  # 2000-01-01 in Unix seconds
_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"
_ROW = np.dtype(
    [
        ("n", ">i2"),
        ("l_key", ">i4"), ("key", ">i4"),
        ("l_ts", ">i4"), ("ts", ">i8"),
        ("l_val", ">i4"), ("val", ">f8"),
        ("l_q", ">i4"), ("q", ">i2"),
        ("l_rx", ">i4"), ("rx", ">i8"),
    ]
)  # fmt: skip
_STAGE = "readings_stage"


def to_pg_micros(epoch: np.ndarray) -> np.ndarray:
    return np.rint((epoch - PG_EPOCH) * 1e6).astype(np.int64)


def encode_copy(batch: ReadingBatch) -> bytes:
    rows = np.empty(len(batch), _ROW)
    rows["n"] = 5
    rows["l_key"], rows["l_ts"], rows["l_val"], rows["l_q"], rows["l_rx"] = 4, 8, 8, 2, 8
    rows["key"] = batch.sensor
    rows["ts"] = to_pg_micros(batch.ts)
    rows["val"] = batch.value
    rows["q"] = batch.quality
    rows["rx"] = to_pg_micros(batch.received)
    return _HEADER + rows.tobytes() + _TRAILER


class PartitionKeeper:
    """Creates daily range partitions of ``readings`` ahead of time (plain PostgreSQL path)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.known: set[str] = set()

    async def ensure(self, conn: AsyncConnection, days: np.ndarray) -> None:
        if not self.enabled:
            return
        for day in np.unique(days):
            start = datetime.fromtimestamp(int(day) * 86400, UTC)
            name = f"readings_p{start:%Y%m%d}"
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
    raw = await raw_connection(conn)
    async with raw.cursor() as cur:
        await cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} "
            "(sensor_key int4, ts timestamptz, value float8, quality int2, received_at timestamptz)"
            " ON COMMIT DELETE ROWS"
        )
        async with cur.copy(f"COPY {_STAGE} FROM STDIN (FORMAT BINARY)") as copy:
            await copy.write(encode_copy(batch))
        await cur.execute(f"INSERT INTO readings SELECT * FROM {_STAGE} ON CONFLICT DO NOTHING")
        return cur.rowcount


async def query_readings(
    conn: AsyncConnection, sensor_key: int, start: datetime, end: datetime, limit: int
) -> list[dict[str, object]]:
    result = await conn.execute(
        text(
            "SELECT ts, value, quality, received_at FROM readings "
            "WHERE sensor_key = :k AND ts >= :s AND ts < :e ORDER BY ts LIMIT :n"
        ),
        {"k": sensor_key, "s": start, "e": end, "n": limit},
    )
    return [dict(row._mapping) for row in result]
