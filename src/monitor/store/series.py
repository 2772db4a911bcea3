"""Reading series for dashboards and the API: raw rows or 1 min / 1 h rollups.

Long ranges are served from the rollups (``readings_1m``, ``readings_1h``: continuous
aggregates on TimescaleDB, tables kept by the writer on plain PostgreSQL; same columns).
``pick_bucket`` chooses the finest resolution that stays under ``MAX_POINTS`` per sensor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

Bucket = Literal["raw", "1m", "1h"]
BUCKETS: tuple[Bucket, ...] = ("raw", "1m", "1h")
SECONDS = {"1m": 60.0, "1h": 3600.0}
MAX_POINTS = 5000


def pick_bucket(start: datetime, end: datetime, interval_s: float) -> Bucket:
    span = (end - start).total_seconds()
    if span / max(interval_s, 1e-3) <= MAX_POINTS:
        return "raw"
    return "1m" if span / 60.0 <= MAX_POINTS else "1h"


async def query_series(
    conn: AsyncConnection,
    keys: list[int],
    start: datetime,
    end: datetime,
    bucket: Bucket,
    limit: int,
) -> dict[int, list[dict[str, Any]]]:
    """Rows per sensor key in time order; rollup rows carry ``value`` (the mean) and min,
    max, last and count."""
    if bucket == "raw":
        sql = """SELECT sensor_key, ts, value, quality, received_at FROM readings
                 WHERE sensor_key = ANY(:keys) AND ts >= :s AND ts < :e
                 ORDER BY sensor_key, ts LIMIT :n"""
    else:
        sql = f"""SELECT sensor_key, bucket AS ts, mean AS value, min, max, last, count
                  FROM readings_{bucket}
                  WHERE sensor_key = ANY(:keys) AND bucket >= :s AND bucket < :e
                  ORDER BY sensor_key, bucket LIMIT :n"""
    rows = await conn.execute(text(sql), {"keys": keys, "s": start, "e": end, "n": limit})
    out: dict[int, list[dict[str, Any]]] = {k: [] for k in keys}
    for row in rows:
        item = dict(row._mapping)
        out[item.pop("sensor_key")].append(item)
    return out
