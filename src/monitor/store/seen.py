"""What the store already holds: readings judged before, so that none is judged twice.

Readings are stored in the same transaction as the alert changes they caused, so a stored
reading is a judged reading.  At start the newest stored event time of every sensor becomes
the engine's watermark; a redelivered or resent reading that the store holds is dropped before
any judgement, on every path (late, too late, backfill), so a replay after a crash, a broker
redelivery or an NB-IoT resend changes nothing.  A resend need not carry the same time to the
microsecond: a reading with the value of a stored one of its sensor within ``near_s`` seconds
(``RISKMON_DUPLICATE_NEAR_S``, at most half the sensor's expected interval, so two genuine
readings are never taken for one) is the same measurement sent again, and is dropped too.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.clock import to_epoch
from monitor.model import ReadingBatch
from monitor.store.binary_copy import to_pg_micros

LOOKUP_CHUNK = 10_000
_STORED = text(
    """SELECT x.i FROM unnest(CAST(:k AS int[]), CAST(:us AS bigint[]),
         CAST(:v AS double precision[]), CAST(:near AS double precision[])) WITH ORDINALITY
         AS x(k, us, v, near, i)
       CROSS JOIN LATERAL (SELECT TIMESTAMPTZ '2000-01-01 00:00:00+00'
         + x.us * INTERVAL '1 microsecond' AS t) AS at
       WHERE EXISTS (SELECT 1 FROM readings r WHERE r.sensor_key = x.k
         AND r.ts BETWEEN at.t - x.near * INTERVAL '1 second'
                      AND at.t + x.near * INTERVAL '1 second'
         AND (r.ts = at.t OR r.value = x.v))"""
)


class StoredReadings:
    def __init__(self, db: AsyncEngine, near_s: float = 0.0) -> None:
        self.db, self.near_s = db, near_s

    async def mask(self, batch: ReadingBatch, interval: np.ndarray | None = None) -> np.ndarray:
        """True for each reading of the batch that the store already holds (or holds with the
        same value within ``near_s`` seconds, and half of ``interval``: each reading's sensor's
        expected interval)."""
        found = np.zeros(len(batch), bool)
        if not len(batch):
            return found
        micros = to_pg_micros(batch.ts)
        near = np.full(len(batch), self.near_s)
        if interval is not None:
            near = np.minimum(near, np.nan_to_num(interval, nan=0.0) / 2)
        async with self.db.connect() as conn:
            for start in range(0, len(batch), LOOKUP_CHUNK):
                end = min(start + LOOKUP_CHUNK, len(batch))
                rows = await conn.execute(
                    _STORED,
                    {
                        "k": batch.sensor[start:end].tolist(),
                        "us": micros[start:end].tolist(),
                        "v": batch.value[start:end].tolist(),
                        "near": near[start:end].tolist(),
                    },
                )
                found[[start + int(r[0]) - 1 for r in rows]] = True
        return found

    async def newest(self, keys: list[int] | None = None) -> dict[int, float]:
        """The newest stored event time of each sensor (of ``keys`` only, when given), half a
        microsecond up: the store keeps microseconds, so the reading it came from (a float
        with more digits) is not newer than it."""
        sql = (
            "SELECT s.key, (SELECT max(r.ts) FROM readings r WHERE r.sensor_key = s.key) "
            "FROM sensors s"
        )
        params: dict[str, object] = {}
        if keys is not None:
            sql += " WHERE s.key = ANY(:keys)"
            params["keys"] = keys
        async with self.db.connect() as conn:
            rows = await conn.execute(text(sql), params)
            return {int(k): to_epoch(ts) + 5e-7 for k, ts in rows if ts is not None}
