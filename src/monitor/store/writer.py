"""The pipeline's checkpoint write: readings, rejects and alert changes in one transaction."""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncEngine

from alerts.model import AlertEvent
from monitor.metrics import Metrics
from monitor.model import ReadingBatch, Reject
from monitor.store.alerts import write_events
from monitor.store.readings import PartitionKeeper, write_readings
from monitor.store.rejects import write_rejects


class StoreWriter:
    def __init__(self, engine: AsyncEngine, partitions: PartitionKeeper, metrics: Metrics) -> None:
        self.engine = engine
        self.partitions = partitions
        self.metrics = metrics

    async def __call__(
        self, batch: ReadingBatch, rejects: list[Reject], events: list[AlertEvent]
    ) -> None:
        flush = self.metrics.flush_duration
        async with self.engine.begin() as conn:
            if len(batch):
                t0 = time.perf_counter()
                await write_readings(conn, batch, self.partitions)
                flush.labels("readings").observe(time.perf_counter() - t0)
            if rejects:
                t0 = time.perf_counter()
                await write_rejects(conn, rejects)
                flush.labels("rejects").observe(time.perf_counter() - t0)
            if events:
                t0 = time.perf_counter()
                await write_events(conn, events)
                flush.labels("alerts").observe(time.perf_counter() - t0)
