"""The pipeline: raw messages -> normalize -> store + rules -> alert tracker -> store -> ack.

One worker drains the bounded input queue in micro-batches (bounded by readings and linger
time).  Checkpoint order: readings, rejects and alert changes are written in one transaction,
then the transport messages are acknowledged (at-least-once, writes are idempotent).

A batch's write is in flight while the next batch is judged (the store works on the other
core meanwhile), one write at a time and in order.  Whoever takes the pipeline lock waits for
that write first (``locked``, ``exclusive``), so under the lock memory and store agree.  A batch
with readings the store may hold already (late ones, resends, a backfill) waits for it before
it asks the store.

A write that fails is retried with the same readings and events (``monitor.checkpoint``);
``store_failure`` says since when and why, and operator actions get a clear error meanwhile.

State mutation (rules, tracker) and its persistence run under one lock, which operator actions
(``monitor.operations``) and rule changes take too, so the store always sees events in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from alerts.model import AlertEvent, EventKind
from alerts.sla import SlaPolicy, escalate
from alerts.tracker import AlertTracker
from ingest.normalize import RAW_LIMIT, normalize, storable
from ingest.raw import RawMessage
from monitor.checkpoint import Checkpoint, StoreFailure
from monitor.clock import Clock
from monitor.errors import StoreError
from monitor.freshness import Freshness
from monitor.metrics import Metrics
from monitor.model import ReadingBatch, Reject, Signal
from monitor.registry import Registry
from rules.anomaly import ShadowScores
from rules.engine import RuleEngine

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Outcome:
    accepted: int = 0
    rejects: list[Reject] = field(default_factory=list)


@dataclass(slots=True)
class Normalized:
    msg: RawMessage
    batch: ReadingBatch
    rejects: list[Reject]


EventListener = Callable[[list[AlertEvent]], None]
LEVEL_CHANGES = (EventKind.OPENED, EventKind.ESCALATED, EventKind.DEESCALATED)


def dedupe_and_sort(batch: ReadingBatch) -> ReadingBatch:
    """Drop in-batch duplicates of (sensor, ts at microsecond precision); order by event time."""
    if len(batch) < 2:
        return batch
    micros = np.rint(batch.ts * 1e6).astype(np.int64)
    order = np.lexsort((batch.sensor, micros))  # stable: a key's first reading comes first
    s, m = batch.sensor[order], micros[order]
    again = np.zeros(order.shape[0], bool)
    again[1:] = (s[1:] == s[:-1]) & (m[1:] == m[:-1])
    batch = batch.take(np.sort(order[~again])) if again.any() else batch
    return batch.take(np.argsort(batch.ts, kind="stable"))


class Pipeline:
    def __init__(
        self,
        *,
        registry: Registry,
        engine: RuleEngine,
        tracker: AlertTracker,
        persist: Callable[[ReadingBatch, list[Reject], list[AlertEvent]], Awaitable[None]],
        metrics: Metrics,
        clock: Clock,
        batch_max: int = 20_000,
        linger_s: float = 0.02,
        queue_max: int = 10_000,
        max_future_s: float = 300.0,
        allowed_lateness_s: float = 300.0,
        sla: SlaPolicy | None = None,
    ) -> None:
        self.registry = registry
        self.engine = engine
        self.tracker = tracker
        self.persist = persist
        self.metrics = metrics
        self.clock = clock
        self.batch_max = batch_max
        self.linger_s = linger_s
        self.max_future_s = max_future_s
        self.allowed_lateness_s = allowed_lateness_s
        self.sla = sla or SlaPolicy()
        self.queue: asyncio.Queue[RawMessage] = asyncio.Queue(queue_max)
        self.lock = asyncio.Lock()
        self.listeners: list[EventListener] = []
        # Where shadow-mode anomaly scores go (the store); None keeps only the metrics.
        self.record_shadow: Callable[[list[ShadowScores]], Awaitable[None]] | None = None
        # Which readings the store already holds (judged before); None judges every reading.
        # (readings, their sensors' expected intervals) -> which the store holds
        self.already_stored: Callable[[ReadingBatch, np.ndarray], Awaitable[np.ndarray]] | None = (
            None
        )
        self.processed_messages = 0
        self.freshness = Freshness()  # which sensors report (the console's all-clear line)
        self.checkpoint = Checkpoint(persist, metrics, clock)
        self.lock_timeout_s = 10.0
        self._stopping = False
        self._busy = False
        self._raised: deque[float] = deque()
        self._shadow_write: asyncio.Task[None] | None = None
        self._writing: asyncio.Task[None] | None = None  # the last batch's write, in flight

    async def submit(self, msg: RawMessage) -> None:
        """Queue a message; waits when the queue is full (backpressure on the source)."""
        await self.queue.put(msg)  # the depth gauge is set per micro-batch (``process``)

    async def submit_and_wait(self, msg: RawMessage) -> Outcome:
        """Queue a message and wait until it is stored (HTTP ingest)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Outcome] = loop.create_future()
        msg.done = lambda outcome: done.done() or done.set_result(outcome)  # type: ignore[func-returns-value]
        await self.submit(msg)
        return await done

    async def run(self) -> None:
        """Process micro-batches until ``stop()``; then drain what is queued and return."""
        while not (self._stopping and self.queue.empty()):
            try:
                first = await asyncio.wait_for(self.queue.get(), 0.2)
            except TimeoutError:
                continue
            self._busy = True
            try:
                await self._process_with_retry(await self._next_batch(first))
            finally:
                self._busy = False
        await self.flushed()

    def stop(self) -> None:
        self._stopping = True

    async def ingest(self, messages: list[RawMessage]) -> None:
        """Process these messages now as one micro-batch (scenario replays drive the
        pipeline step by step with their own clock)."""
        if messages:
            await self._process_with_retry([self._normalize(m) for m in messages])
            await self.flushed()

    async def idle(self) -> None:
        """Wait until every queued message is processed and stored."""
        while self._busy or not self.queue.empty():
            await asyncio.sleep(0.01)
        await self.flushed()

    async def flushed(self) -> None:
        """Wait until what was judged is stored and acknowledged, and its shadow scores too."""
        await self.settled()
        await self.shadow_written()

    async def settled(self) -> None:
        """Wait until the batch written last is stored, published and acknowledged (several
        may wait; one that is cancelled leaves the write going)."""
        task = self._writing
        if task is None:
            return
        try:
            await asyncio.shield(task)
        finally:
            if task.done() and self._writing is task:
                self._writing = None  # a write that failed is reported once, not again

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        """The pipeline lock, once the write in flight is stored: the holder's view of memory
        and of the store agree, and what it writes comes after the batches judged before."""
        async with self.lock:
            await self.settled()
            yield

    def _normalize(self, msg: RawMessage) -> Normalized:
        """Never raises: a message that breaks the normalizer (a defect) is rejected whole,
        with the reason, and acknowledged like any other reject, so it cannot poison the
        pipeline or a restart."""
        try:
            batch, rejects = normalize(msg, self.registry, max_future_s=self.max_future_s)
        except Exception as err:
            self.metrics.errors.labels("normalize").inc()
            log.error("a %s message broke the normalizer (%r); rejected", msg.source, err)
            reason = f"{err.__class__.__name__}: {str(err)[:200]}"
            text = storable(msg.payload[:RAW_LIMIT].decode("utf-8", "replace"))
            reject = Reject("internal_error", text, msg.source, msg.received, msg.topic, reason)
            return Normalized(msg, ReadingBatch.empty(), [reject])
        return Normalized(msg, batch, rejects)

    async def _next_batch(self, first: RawMessage) -> list[Normalized]:
        """Collect messages until the batch holds ``batch_max`` readings or the linger time
        is up.  Messages are normalized as they are taken."""
        items = [self._normalize(first)]
        readings = len(items[0].batch) + len(items[0].rejects)
        deadline = time.monotonic() + self.linger_s
        while readings < self.batch_max:
            if self.queue.empty():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    msg = await asyncio.wait_for(self.queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                msg = self.queue.get_nowait()
            item = self._normalize(msg)
            items.append(item)
            readings += len(item.batch) + len(item.rejects)
        return items

    async def _process_with_retry(self, items: list[Normalized]) -> None:
        """Judge and store a micro-batch.  The store's own failures are retried inside
        ``process`` (``_store``); anything else is a defect: logged, counted and retried."""
        for source, n in Counter(i.msg.source for i in items).items():
            self.metrics.messages.labels(source).inc(n)
        delay = 0.2
        while True:
            try:
                await self.process(items)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                self.metrics.errors.labels("process").inc()
                log.exception("processing a batch of %d messages failed; retrying", len(items))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def process(self, items: list[Normalized]) -> None:
        """Evaluate and store one micro-batch; then acknowledge its messages."""
        self.metrics.queue_depth.set(self.queue.qsize())
        rejects = [r for item in items for r in item.rejects]
        live = dedupe_and_sort(ReadingBatch.concat([i.batch for i in items if not i.msg.backfill]))
        history = dedupe_and_sort(ReadingBatch.concat([i.batch for i in items if i.msg.backfill]))
        async with self.lock:
            seen = self.engine.seen_before(live)
            if seen.any() or len(history):  # looked up in the store: it must hold the last batch
                await self.settled()
            live = await self._unjudged(live, seen)
            history = await self._unjudged(history, np.ones(len(history), bool))
            # CPU work in a worker thread, under the lock: the event loop keeps answering
            # (health, API, acknowledgements) and the last batch's write goes on meanwhile
            signals = await asyncio.to_thread(self._judge, live, history, self.clock.now())
            events = self._observe(signals)
            batch = ReadingBatch.concat([live, history])
            self.freshness.seen(batch.sensor, batch.received)
            shadow = self.engine.drain_shadow()
            await self.settled()  # one write at a time, in the order judged
            self._writing = asyncio.create_task(self._write(items, batch, rejects, events, shadow))

    async def _write(
        self,
        items: list[Normalized],
        batch: ReadingBatch,
        rejects: list[Reject],
        events: list[AlertEvent],
        shadow: list[ShadowScores],
    ) -> None:
        """Store a judged batch (retried until the store takes it), publish its events, then
        acknowledge its messages."""
        await self._store(batch, rejects, events)
        try:
            self._account(items, events)
        except Exception:  # a listener's defect: logged, and the messages are still stored
            self.metrics.errors.labels("publish").inc()
            log.exception("publishing %d alert changes failed", len(events))
        self.processed_messages += len(items)
        self.metrics.batch_readings.observe(len(batch))
        # the shadow write is under way before the messages are acknowledged, so whoever
        # waited for them sees its scores after ``shadow_written``
        await self._shadow(shadow)
        for item in items:
            if item.msg.done is not None:
                try:
                    item.msg.done(Outcome(len(item.batch), item.rejects))
                except Exception:  # a transport's defect: the others are still acknowledged
                    self.metrics.errors.labels("acknowledge").inc()
                    log.exception("acknowledging a %s message failed", item.msg.source)

    def _judge(self, live: ReadingBatch, history: ReadingBatch, now: float) -> list[Signal]:
        signals, _ = self.engine.judge(live, now, self.allowed_lateness_s)
        if len(history):
            signals += self.engine.retrospective(history)
        return signals

    async def _unjudged(self, batch: ReadingBatch, candidates: np.ndarray) -> ReadingBatch:
        """Drop the candidates the store already holds: they were judged (and stored with the
        alert changes they caused) before a crash, a redelivery or a device's resend."""
        if self.already_stored is None or not candidates.any():
            return batch
        where = np.flatnonzero(candidates)
        sub = batch.take(where)
        stored = await self.already_stored(sub, self.engine.registry.interval[sub.sensor])
        if not stored.any():
            return batch
        self.metrics.duplicates_dropped.inc(int(stored.sum()))
        keep = np.ones(len(batch), bool)
        keep[where[stored]] = False
        return batch.take(keep)

    async def _store(
        self, batch: ReadingBatch, rejects: list[Reject], events: list[AlertEvent]
    ) -> None:
        await self.checkpoint.write(batch, rejects, events)

    @property
    def store_failure(self) -> StoreFailure | None:
        return self.checkpoint.failure

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """The pipeline lock for an operator action; a clear error instead of a wait without
        end while a batch is waiting for the store."""
        failure = self.store_failure
        if failure is not None:
            raise StoreError(f"the store is failing since {failure.since:.0f}: {failure.reason}")
        busy = f"the pipeline is busy (no lock within {self.lock_timeout_s:.0f}s)"
        deadline = time.monotonic() + self.lock_timeout_s
        try:
            await asyncio.wait_for(self.lock.acquire(), self.lock_timeout_s)
        except TimeoutError as err:
            raise StoreError(busy) from err
        try:
            try:
                await asyncio.wait_for(self.settled(), max(deadline - time.monotonic(), 0.001))
            except TimeoutError as err:
                raise StoreError(busy) from err
            yield
        finally:
            self.lock.release()

    async def _shadow(self, records: list[ShadowScores]) -> None:
        """Scores of shadow-mode anomaly rules: counted, and stored when a sink is set, in
        the background (diagnostics: the next batch is judged meanwhile; one write at a time,
        so a slow store holds the pipeline back rather than piling writes up)."""
        if not records:
            return
        for scores in records:
            self.metrics.shadow_scored.labels(scores.rule).inc(len(scores))
            levels, counts = np.unique(
                scores.would_alert[scores.would_alert > 0], return_counts=True
            )
            for level, n in zip(levels.tolist(), counts.tolist(), strict=True):
                self.metrics.shadow_would_alert.labels(scores.rule, str(level)).inc(n)
        if self.record_shadow is not None:
            await self.shadow_written()
            self._shadow_write = asyncio.create_task(
                self._write_shadow(self.record_shadow, records)
            )

    async def _write_shadow(
        self, sink: Callable[[list[ShadowScores]], Awaitable[None]], records: list[ShadowScores]
    ) -> None:
        try:
            await sink(records)
        except Exception as err:  # diagnostics only: never hold the readings back
            self.metrics.errors.labels("shadow").inc()
            log.error("storing %d shadow scores failed (%s)", sum(map(len, records)), err)

    async def shadow_written(self) -> None:
        """Wait for the shadow scores' write in flight, if any.  Several may wait (the
        pipeline and API readers); a waiter that is cancelled leaves the write going."""
        task = self._shadow_write
        if task is None:
            return
        await asyncio.shield(task)
        if self._shadow_write is task:
            self._shadow_write = None

    async def tick(self) -> None:
        """Timer-driven rules (data interruption) and SLA escalation."""
        async with self.locked():
            now = self.clock.now()
            events = self._observe(self.engine.tick(now))
            overdue = escalate(list(self.tracker.active.values()), now, self.sla)
            events += overdue
            if events:
                await self._store(ReadingBatch.empty(), [], events)
            for event in overdue:
                self.tracker.apply(event.alert)
            self.update_kpis(now)
        self.publish(events)

    def _observe(self, signals: list[Signal]) -> list[AlertEvent]:
        now = self.clock.now()
        events: list[AlertEvent] = []
        for signal in signals:
            events.extend(self.tracker.observe(signal, now))
        return events

    def _account(self, items: list[Normalized], events: list[AlertEvent]) -> None:
        m = self.metrics
        for item in items:
            if len(item.batch):
                m.readings_accepted.labels(item.msg.source).inc(len(item.batch))
            for reject in item.rejects:
                m.readings_rejected.labels(reject.source, reject.reason).inc()
        now = self.clock.now()
        for event in events:
            if event.received is not None:
                m.event_to_alert.observe(max(0.0, now - event.received))
        self.publish(events)

    def publish(self, events: list[AlertEvent]) -> None:
        """Count stored events and hand them to the listeners (stream, notifications)."""
        for event in events:
            category = event.alert.category.value
            self.metrics.alert_events.labels(event.kind.value).inc()
            self._kpi(event)
            if event.kind == EventKind.OPENED:
                self.metrics.alerts_opened.labels(str(int(event.level)), category).inc()
            if event.kind in LEVEL_CHANGES:
                self.metrics.level_reached.labels(str(int(event.level)), category).inc()
        if events:
            for listener in self.listeners:
                listener(events)

    def _kpi(self, event: AlertEvent) -> None:
        alert, m = event.alert, self.metrics
        if alert.retrospective:
            return
        raised = alert.raised_at if alert.raised_at is not None else event.at
        if (event.kind == EventKind.OPENED and not alert.suppressed) or (
            event.kind == EventKind.UNSUPPRESSED
        ):  # raised to the operators (a suppressed alert is, when it is shown)
            self._raised.append(event.at)
        elif event.kind == EventKind.ACKNOWLEDGED:
            m.time_to_ack.labels(str(int(alert.level))).observe(max(0.0, event.at - raised))
        elif event.kind == EventKind.DISPOSED:
            m.time_to_dispose.labels(str(int(alert.level))).observe(max(0.0, event.at - raised))

    def update_kpis(self, now: float) -> None:
        while self._raised and self._raised[0] < now - 600:
            self._raised.popleft()
        self.metrics.recent_alerts.set(len(self._raised))
        held = [
            a
            for a in (*self.tracker.active.values(), *self.tracker.waiting.values())
            if not a.suppressed  # off the operators' list (alerts.suppression)
        ]
        self.metrics.stale_alerts.set(
            sum(1 for a in held if not a.done and (a.raised_at or now) < now - 86400)
        )
        active = Counter(int(a.level) for a in self.tracker.active.values() if not a.suppressed)
        waiting = Counter(int(a.level) for a in held if a.waiting)
        for level in (1, 2, 3, 4):
            self.metrics.alerts_active.labels(str(level)).set(active[level])
            self.metrics.alerts_waiting.labels(str(level)).set(waiting[level])
