"""The 1 min and 1 h rollups on plain PostgreSQL, kept behind a watermark.

TimescaleDB keeps its continuous aggregates itself.  On plain PostgreSQL the rollup tables
(``readings_1m_t``, ``readings_1h_t``) hold every stored reading with ``ts`` before the
watermark (``rollup_watermark.upto``), exactly once:

- a write folds into the rollups only its new readings **older than the watermark** (late
  data, replays), in the statement that inserts them, holding the watermark row ``FOR SHARE``
  until it commits;
- ``advance`` (the service's timer, every ``RISKMON_ROLLUP_INTERVAL_S``, through
  ``catch_up``'s short steps) locks the watermark row ``FOR UPDATE``, so it waits for the
  writes in flight, folds the readings of ``[watermark, upto)`` from the readings table (a
  BRIN index on ``ts`` finds them), and moves the watermark to ``upto``, in one transaction.
  A write that comes meanwhile waits for it and then sees the new watermark.

So the write of readings in order pays for the insert alone, and the rollups trail the newest
reading by ``RISKMON_ROLLUP_LAG_S`` plus the timer's interval.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.clock import to_datetime

ORIGIN = "timestamptz '2000-01-01 00:00Z'"
CHUNK = 50_000  # readings a catch-up step folds, about: what a write may wait for
_MERGE = """INSERT INTO readings_{bucket}_t AS r
      (sensor_key, bucket, count, sum, min, max, last_ts, last)
    {select}
    ON CONFLICT (sensor_key, bucket) DO UPDATE SET
      count = r.count + excluded.count, sum = r.sum + excluded.sum,
      min = least(r.min, excluded.min), max = greatest(r.max, excluded.max),
      last = CASE WHEN excluded.last_ts >= r.last_ts THEN excluded.last ELSE r.last END,
      last_ts = greatest(r.last_ts, excluded.last_ts)"""
_HOURS = f"""SELECT sensor_key, date_bin(interval '1 hour', bucket, {ORIGIN}), sum(count),
      sum(sum), min(min), max(max), max(last_ts), (array_agg(last ORDER BY last_ts DESC))[1]
    FROM d GROUP BY 1, 2"""


def fold(rows: str) -> str:
    """CTEs that fold ``rows`` (a CTE of sensor_key, ts, value) into both rollups: ``d`` (per
    minute), ``m`` and ``h`` (the merges)."""
    return f"""d AS (
    SELECT sensor_key, date_bin(interval '1 minute', ts, {ORIGIN}) AS bucket,
           count(*) AS count, sum(value) AS sum, min(value) AS min, max(value) AS max,
           max(ts) AS last_ts, (array_agg(value ORDER BY ts DESC))[1] AS last
    FROM {rows} GROUP BY 1, 2),
  m AS ({_MERGE.format(bucket="1m", select="SELECT * FROM d")}),
  h AS ({_MERGE.format(bucket="1h", select=_HOURS)})"""


_ADVANCE = f"""WITH due AS (
    SELECT sensor_key, ts, value FROM readings WHERE ts >= :lo AND ts < :hi),
  {fold("due")}
SELECT count(*) FROM due"""


_TABLE_LOCK = {"SHARE": "ROW EXCLUSIVE", "UPDATE": "ACCESS SHARE"}


async def watermark(conn: AsyncConnection, lock: str = "SHARE") -> datetime:
    """The watermark, locked ``FOR SHARE`` (a write) or ``FOR UPDATE`` (``advance``) until the
    transaction ends.  The readings table is locked first, in the mode the caller's statements
    take anyway: every transaction takes the two locks in the same order, so one that creates
    a partition (which locks the table exclusively) cannot close a cycle with the others."""
    await conn.execute(text(f"LOCK TABLE ONLY readings IN {_TABLE_LOCK[lock]} MODE"))
    row = (await conn.execute(text(f"SELECT upto FROM rollup_watermark FOR {lock}"))).one()
    return row[0]  # type: ignore[no-any-return]


async def advance(
    conn: AsyncConnection, upto: datetime, most: timedelta | None = None
) -> tuple[datetime, int]:
    """Fold the readings of ``[watermark, upto)`` into the rollups, at most ``most`` of event
    time of them, and move the watermark there (never back).  Returns the new watermark and
    the readings folded.  Runs inside the caller's transaction; commit it soon: every write of
    readings waits for it."""
    lo = await watermark(conn, "UPDATE")
    if most is not None:
        upto = min(upto, lo + most)
    if upto <= lo:
        return lo, 0
    folded = int((await conn.execute(text(_ADVANCE), {"lo": lo, "hi": upto})).scalar_one())
    await conn.execute(text("UPDATE rollup_watermark SET upto = :u"), {"u": upto})
    return upto, folded


async def catch_up(db: AsyncEngine, upto: datetime, chunk: int = CHUNK) -> int:
    """Move the watermark to ``upto`` in steps of about ``chunk`` readings, each in its own
    short transaction, so a write never waits for more than one step.  A step spans a minute
    of event time at first, twice as long after a light one (empty years pass in a few
    steps), half as long after a heavy one.  Returns the readings folded."""
    step, total = timedelta(minutes=1), 0
    while True:
        async with db.begin() as conn:
            reached, folded = await advance(conn, upto, step)
        total += folded
        if reached >= upto:
            return total
        if folded < chunk // 2:
            step *= 2
        elif folded > chunk and step > timedelta(minutes=1):
            step = max(step / 2, timedelta(minutes=1))


def due(newest: float, lag_s: float) -> datetime | None:
    """Where the watermark may go when the newest reading written is at ``newest`` (epoch
    seconds): ``lag_s`` before it, down to the minute; None before any write."""
    if not math.isfinite(newest):
        return None
    return to_datetime(60.0 * ((newest - lag_s) // 60.0))
