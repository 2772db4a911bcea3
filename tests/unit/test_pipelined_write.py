"""A batch is judged while the batch before it is being written: writes stay one at a time and
in order, a message is acknowledged only once its batch is stored, whoever takes the pipeline
lock finds the store caught up, and a transport that fails to acknowledge one message does not
stop the pipeline."""

from __future__ import annotations

import asyncio

import orjson

from alerts.model import AlertEvent
from alerts.tracker import AlertTracker
from ingest.raw import RawMessage
from monitor.clock import ManualClock
from monitor.metrics import Metrics
from monitor.model import ReadingBatch, Reject
from monitor.pipeline import Outcome, Pipeline
from rules.engine import RuleEngine, load_pack
from tests.unit.factories import registry, running

T0 = 1_790_000_000.0


class SlowStore:
    """Records what was stored, in order, and how many writes overlapped."""

    def __init__(self, write_s: float) -> None:
        self.write_s = write_s
        self.stored: list[list[float]] = []  # each write's reading times
        self.events: list[AlertEvent] = []
        self.writing = 0
        self.most = 0

    async def __call__(
        self, batch: ReadingBatch, rejects: list[Reject], events: list[AlertEvent]
    ) -> None:
        self.writing += 1
        self.most = max(self.most, self.writing)
        await asyncio.sleep(self.write_s)
        self.stored.append(batch.ts.tolist())
        self.events += events
        self.writing -= 1


def pipeline(store: SlowStore) -> Pipeline:
    reg = registry(("gas-1", "s", "gas_combustible"), interval=30.0)
    engine = RuleEngine(reg, now=T0)
    for rule in load_pack("hazchem"):
        if rule.id == "gas_combustible.high":
            engine.upsert(rule)
    return Pipeline(
        registry=reg, engine=engine, tracker=AlertTracker(), persist=store,
        metrics=Metrics(), clock=ManualClock(T0 + 3600), linger_s=0.0,
    )  # fmt: skip


def message(i: int, value: float = 3.0) -> RawMessage:
    body = [{"sensor": "gas-1", "ts": T0 + 30 * i, "value": value}]
    return RawMessage(orjson.dumps(body), "http", T0 + 3600, site="s")


async def test_writes_stay_in_order_one_at_a_time_and_messages_wait_for_theirs() -> None:
    store = SlowStore(write_s=0.05)
    p = pipeline(store)
    acknowledged: list[tuple[int, int]] = []  # (message, batches stored when acknowledged)
    async with running(p):
        for i in range(24):
            msg = message(i, value=60.0 if 4 <= i < 8 else 3.0)
            msg.done = lambda _o, i=i: acknowledged.append((i, len(store.stored)))
            await p.submit(msg)
            await asyncio.sleep(0.005)  # several batches, so writes and judging overlap
        await p.idle()
    times = [t for write in store.stored for t in write]
    assert times == [T0 + 30 * i for i in range(24)]
    assert store.most == 1
    for i, stored_then in acknowledged:
        assert T0 + 30 * i in [t for write in store.stored[:stored_then] for t in write]
    assert sorted(i for i, _ in acknowledged) == list(range(24))
    kinds = [e.kind.value for e in store.events]  # the off-delay (300 s) passes
    assert kinds == ["opened", "resolved"]


async def test_a_lock_holder_finds_the_batch_judged_before_it_stored() -> None:
    store = SlowStore(write_s=0.3)
    p = pipeline(store)
    async with running(p):
        await p.submit(message(0, value=60.0))
        await p.submit(message(1, value=60.0))
        while not p.tracker.active:  # judged: the alert is open in memory ...
            await asyncio.sleep(0.005)
        async with p.locked():  # ... and stored by the time the lock is ours
            assert any(e.kind.value == "opened" for e in store.events)
        async with p.exclusive():
            assert len(store.stored) >= 1


async def test_a_failing_acknowledgement_does_not_stop_the_pipeline() -> None:
    store = SlowStore(write_s=0.0)
    p = pipeline(store)
    done: list[Outcome] = []

    def broken(_outcome: Outcome) -> None:
        raise RuntimeError("the transport is gone")

    async with running(p):
        bad = message(0)
        bad.done = broken
        await p.submit(bad)
        outcome = await asyncio.wait_for(p.submit_and_wait(message(1)), 5)
        done.append(outcome)
    assert done[0].accepted == 1
    assert [t for write in store.stored for t in write] == [T0, T0 + 30]
