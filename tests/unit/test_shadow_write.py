"""Shadow scores are written in the background, after a batch's events are published: a
reader that waited for its readings to be acknowledged, then for ``shadow_written``, finds
their scores, however slow the write; a reader that gives up does not stop the write."""

from __future__ import annotations

import asyncio

import orjson

from alerts.tracker import AlertTracker
from ingest.raw import RawMessage
from monitor.clock import ManualClock
from monitor.metrics import Metrics
from monitor.pipeline import Pipeline
from rules.anomaly import ShadowScores
from rules.engine import RuleEngine
from rules.spec import AnomalyRule
from tests.unit.factories import registry, running

T0 = 1_790_000_000.0


def pipeline(written: list[int], write_s: float) -> Pipeline:
    reg = registry(("gas-1", "s", "gas_combustible"))
    engine = RuleEngine(reg, now=T0)
    engine.upsert(AnomalyRule(id="anom", grace=5, shadow=True))

    async def persist(*_: object) -> None:
        return None

    async def sink(records: list[ShadowScores]) -> None:
        await asyncio.sleep(write_s)
        written.append(sum(len(r) for r in records))

    p = Pipeline(
        registry=reg, engine=engine, tracker=AlertTracker(), persist=persist,
        metrics=Metrics(), clock=ManualClock(T0 + 3600), linger_s=0.0,
    )  # fmt: skip
    p.record_shadow = sink
    return p


def message(n: int, start: int = 0) -> RawMessage:
    body = [{"sensor": "gas-1", "ts": T0 + 60 * i, "value": 2.0 + 0.01 * (i % 7)}
            for i in range(start, start + n)]  # fmt: skip
    return RawMessage(orjson.dumps(body), "http", T0 + 3600, site="s")


async def test_scores_are_there_once_acknowledged_and_written():
    written: list[int] = []
    p = pipeline(written, write_s=0.3)
    async with running(p):
        await p.submit_and_wait(message(20))
        # acknowledged while the first write is still going (one write in flight at a time)
        await p.submit_and_wait(message(15, start=20))
        await p.shadow_written()
        assert written == [20, 15]


async def test_a_reader_that_gives_up_leaves_the_write_going():
    written: list[int] = []
    p = pipeline(written, write_s=0.3)
    async with running(p):
        await p.submit_and_wait(message(20))
        impatient = asyncio.create_task(p.shadow_written())
        patient = asyncio.create_task(p.shadow_written())
        await asyncio.sleep(0.05)
        impatient.cancel()
        await patient
        assert written == [20]
    assert written == [20]
