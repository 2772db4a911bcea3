"""Rule state survives a restart of the single node (role ``all``), as it does on the Kafka
processor: pending on- and off-delays, windows, detector state.

The whole engine is snapshotted periodically and at a clean stop (``state_snapshots``, topic
``riskmon:node``).  At start the snapshot is restored, and the readings stored after it (the
store has them all: a batch is stored before it is acknowledged) are judged again, silently,
to bring the state to where it was when the process stopped.  Their alerts and events are in
the store already; the tracker is restored from the store as before.
"""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from alerts.model import alert_to_dict
from alerts.tracker import AlertTracker
from monitor.clock import Clock
from monitor.model import ReadingBatch
from monitor.pipeline import Pipeline
from monitor.registry import Registry
from monitor.store.snapshots import save_snapshot
from rules.engine import RuleEngine

log = logging.getLogger(__name__)
TOPIC = "riskmon:node"
REPLAY_CHUNK = 50_000


class NodeState:
    def __init__(
        self,
        db: AsyncEngine,
        registry: Registry,
        engine: RuleEngine,
        tracker: AlertTracker,
        clock: Clock,
        allowed_lateness_s: float,
    ) -> None:
        self.db, self.registry, self.engine, self.tracker = db, registry, engine, tracker
        self.clock, self.allowed_lateness_s = clock, allowed_lateness_s

    def keys(self) -> np.ndarray:
        return np.array(sorted(self.registry.by_key), np.int64)

    async def snapshot(self) -> None:
        """The whole engine's state and the open alerts (the caller holds the pipeline lock,
        or the pipeline is stopped)."""
        started = time.perf_counter()
        state = self.engine.export_state(self.keys())
        alerts = [alert_to_dict(a) for a in self.tracker.active.values()]
        async with self.db.begin() as conn:
            await save_snapshot(conn, TOPIC, 0, 0, len(self.registry.by_key), state, alerts)
        log.debug(
            "node state snapshot: %d bytes in %.3fs", len(state), time.perf_counter() - started
        )

    async def restore(self) -> int:
        """Restore the last snapshot and judge again what was stored after it.  Returns the
        number of readings judged again (0 without a snapshot)."""
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT state, extract(epoch FROM taken_at) AS taken "
                        "FROM state_snapshots WHERE topic = :t AND partition = 0"
                    ),
                    {"t": TOPIC},
                )
            ).first()
        if row is None:
            return 0
        now = self.clock.now()
        try:
            self.engine.import_state(bytes(row.state), now)
        except Exception as err:  # a snapshot of another registry or format: start afresh
            log.warning("node state snapshot not restored (%s); windows start empty", err)
            return 0
        return await self._replay(float(row.taken), now)

    async def _replay(self, taken: float, now: float) -> int:
        marks = self.engine.watermark
        finite = marks[np.isfinite(marks)]
        since = float(finite.min()) if finite.size else taken
        judged = 0
        async with self.db.connect() as conn:
            result = await conn.stream(
                text(
                    "SELECT sensor_key, extract(epoch FROM ts), value, quality,"
                    " extract(epoch FROM received_at) FROM readings"
                    " WHERE ts > to_timestamp(:since) OR received_at >= to_timestamp(:taken)"
                    " ORDER BY ts, sensor_key"
                ),
                {"since": since, "taken": taken - 5.0},
            )
            async for rows in result.partitions(REPLAY_CHUNK):
                data = np.array([tuple(r) for r in rows], np.float64).reshape(-1, 5)
                batch = ReadingBatch(
                    data[:, 0].astype(np.int32),
                    data[:, 1],
                    data[:, 2],
                    data[:, 3].astype(np.int16),
                    data[:, 4],
                )
                known = batch.sensor < self.registry.capacity
                batch = batch.take(known)
                fresh = batch.take(batch.ts > self.engine.watermark[batch.sensor])
                if len(fresh):
                    self.engine.judge(fresh, now, self.allowed_lateness_s)  # verdicts: stored
                    judged += len(fresh)
        self.engine.drain_shadow()  # scored before the stop; not written twice
        if judged:
            log.info(
                "node state restored; %d readings stored after the snapshot judged again", judged
            )
        return judged

    async def run_periodic(self, pipeline: Pipeline, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                async with pipeline.lock:
                    await self.snapshot()
            except Exception as err:
                log.error(
                    "node state snapshot failed (%s: %s); will retry", type(err).__name__, err
                )
