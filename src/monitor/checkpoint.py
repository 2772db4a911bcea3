"""The pipeline's checkpoint write: retried until the store takes it, and loud meanwhile.

A write that fails is retried with backoff (0.2 s doubling to 10 s) with the same readings,
rejects and alert events: they are not judged again, so nothing the rules concluded is lost,
and the transport messages are acknowledged only once it is stored.  While it fails,
``failure`` says since when, how many attempts and why (``/readyz`` answers 503 with it),
``riskmon_store_failing`` is 1, ``riskmon_store_write_failures_total`` counts the attempts, and
each attempt logs one ERROR line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from alerts.model import AlertEvent
from monitor.clock import Clock
from monitor.metrics import Metrics
from monitor.model import ReadingBatch, Reject

log = logging.getLogger("monitor.pipeline")
Persist = Callable[[ReadingBatch, list[Reject], list[AlertEvent]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class StoreFailure:
    since: float  # processing time of the first failed attempt
    reason: str  # one line: the error's class and message
    attempts: int


class Checkpoint:
    def __init__(self, persist: Persist, metrics: Metrics, clock: Clock) -> None:
        self.persist = persist
        self.metrics = metrics
        self.clock = clock
        self.failure: StoreFailure | None = None

    async def write(
        self, batch: ReadingBatch, rejects: list[Reject], events: list[AlertEvent]
    ) -> None:
        """Write until the store takes it: the same batch and events every time."""
        delay = 0.2
        while True:
            try:
                await self.persist(batch, rejects, events)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                failure = self.failure
                reason = f"{err.__class__.__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                self.failure = StoreFailure(
                    failure.since if failure else self.clock.now(),
                    reason,
                    (failure.attempts if failure else 0) + 1,
                )
                self.metrics.store_failures.inc()
                self.metrics.store_failing.set(1)
                log.error(
                    "storing %d readings and %d alert changes failed (%s); retrying in %.1fs",
                    len(batch),
                    len(events),
                    reason,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            if self.failure is not None:
                log.warning(
                    "store recovered after %.1fs and %d failed attempts",
                    self.clock.now() - self.failure.since,
                    self.failure.attempts,
                )
                self.failure = None
                self.metrics.store_failing.set(0)
            return
