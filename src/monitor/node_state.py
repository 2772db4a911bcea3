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
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

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
from rules.statecodec import encode_state

log = logging.getLogger(__name__)
TOPIC = "riskmon:node"
REPLAY_CHUNK = 50_000


@dataclass(frozen=True, slots=True)
class Snapshot:
    state: dict[str, np.ndarray]
    alerts: list[dict[str, Any]]
    sensors: int
    taken_at: float


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
        self._writing = asyncio.Lock()  # one write at a time, in the order they were taken

    def keys(self) -> np.ndarray:
        return np.array(sorted(self.registry.by_key), np.int64)

    def take(self) -> Snapshot:
        """The whole engine's state and the open alerts, now (the caller holds the pipeline
        lock, or the pipeline is stopped, so the state matches what is stored)."""
        state = self.engine.export_arrays(self.keys())
        alerts = [alert_to_dict(a) for a in self.tracker.active.values()]
        return Snapshot(state, alerts, len(self.registry.by_key), self.clock.now())

    async def write(self, snapshot: Snapshot) -> None:
        """Store a snapshot taken before.  Needs no pipeline lock: the readings stored after
        ``taken_at`` are judged again at a restore (``_replay``)."""
        started = time.perf_counter()
        state = await asyncio.to_thread(encode_state, snapshot.state)
        async with self.db.begin() as conn:
            await save_snapshot(
                conn, TOPIC, 0, 0, snapshot.sensors, state, snapshot.alerts,
                taken_at=snapshot.taken_at,
            )  # fmt: skip
        took = time.perf_counter() - started
        log.debug("node state snapshot: %d bytes in %.3fs", len(state), took)

    async def snapshot(
        self, locked: Callable[[], AbstractAsyncContextManager[None]] | None = None
    ) -> None:
        """Take and store a snapshot.  The state is taken under ``locked`` (the pipeline's
        lock, with its write in flight stored) and written after it is released, so judging
        goes on meanwhile; without it, the caller holds the lock or the pipeline is stopped."""
        async with self._writing:
            if locked is None:
                snapshot = self.take()
            else:
                async with locked():
                    snapshot = self.take()
            await self.write(snapshot)

    async def restore(self) -> int | None:
        """Restore the last snapshot and judge again what was stored after it.  Returns the
        number of readings judged again, None without a usable snapshot: the caller then
        snapshots the state it starts from (``snapshot``), so a process killed before its
        first periodic snapshot is restored from that, not from empty windows."""
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
            return None
        now = self.clock.now()
        try:
            self.engine.import_state(bytes(row.state), now)
        except Exception as err:  # a snapshot of another registry or format: start afresh
            log.warning("node state snapshot not restored (%s); windows start empty", err)
            return None
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
                await self.snapshot(pipeline.locked)
            except Exception as err:
                log.error(
                    "node state snapshot failed (%s: %s); will retry", type(err).__name__, err
                )
