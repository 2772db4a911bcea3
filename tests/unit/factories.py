"""Small builders for pure unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np

from monitor.model import ReadingBatch, Sensor, Site, SiteKind
from monitor.pipeline import Pipeline
from monitor.registry import Registry


def registry(*sensors: tuple[str, str, str], interval: float = 60.0) -> Registry:
    """sensors: (id, site, kind); sites get tenant t-<site>."""
    reg = Registry()
    for site in sorted({s[1] for s in sensors}):
        reg.add_site(Site(site, site, f"t-{site}", SiteKind.MAJOR_HAZARD_SOURCE))
    for key, (sid, site, kind) in enumerate(sensors, start=1):
        reg.add_sensor(Sensor(sid, site, kind, "u", interval), key)
    return reg


def batch(
    reg: Registry, rows: list[tuple[str, float, float]], received: float = 0.0
) -> ReadingBatch:
    """rows: (sensor id, ts, value)."""
    return ReadingBatch(
        np.array([reg.keys[r[0]] for r in rows], np.int32),
        np.array([r[1] for r in rows], np.float64),
        np.array([r[2] for r in rows], np.float64),
        np.zeros(len(rows), np.int16),
        np.full(len(rows), received or (max((r[1] for r in rows), default=0.0))),
    )


@asynccontextmanager
async def running(p: Pipeline) -> AsyncIterator[None]:
    """The pipeline's worker, for the block; then it drains what is queued and stops."""
    runner = asyncio.create_task(p.run())
    try:
        yield
    finally:
        p.stop()
        await runner
