"""The ``anomaly`` rule: per-sensor detectors, graded and explained.

Readings go through the rule's detector ensemble in event-time order (``rules.detectors``).
The grade follows the run of anomalous readings through the threshold state machine: a run
of 1 is blue, a run of ``persist`` is yellow (never more: an anomaly alone is at most
yellow).  Each reading also gets a *side* (+1 above the expected value, -1 below, 0 normal)
that the engine hands to threshold rules so an agreeing anomaly raises them by one level.

In shadow mode no signal leaves the rule: its scores and would-be alerts are kept in
``shadow`` for the service to record.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from monitor.model import ReadingBatch, Signal
from monitor.registry import Registry
from rules.detectors.ensemble import Ensemble, Verdicts
from rules.detectors.specs import build
from rules.spec import AnomalyRule, GradedRule, ThresholdRule
from rules.state import SEEN, column
from rules.threshold import ThresholdEvaluator

MODELS = "models."  # the prefix of the detectors' columns in the rule's table


@dataclass(frozen=True)
class ShadowScores:
    """One batch's scores under a shadow rule, column-wise (one entry per scored reading, no
    object per reading): ``sensor`` an index into ``sensors`` (ids), ``detector`` one into
    ``detectors`` (names); ``would_alert`` the level a live rule would have raised at the reading
    (0: none); ``reported`` the score of an episode's first reading (0 inside an episode)."""

    rule: str
    detectors: tuple[str, ...]
    sensors: tuple[str, ...]
    sensor: np.ndarray
    ts: np.ndarray
    score: np.ndarray
    detector: np.ndarray
    expected: np.ndarray
    value: np.ndarray
    would_alert: np.ndarray
    anomalous: np.ndarray
    reported: np.ndarray

    def __len__(self) -> int:
        return int(self.ts.shape[0])


def _levels_at(sub: ReadingBatch, signals: list[Signal], registry: Registry) -> np.ndarray:
    """The level each signal raised, at its reading of ``sub`` (0 elsewhere)."""
    out = np.zeros(len(sub), np.int16)
    raised = [s for s in signals if s.level and s.sensor is not None]
    if not raised:
        return out
    keys = registry.keys
    where = {(keys[s.sensor], s.ts): int(s.level) for s in raised if s.sensor in keys}
    for i in np.flatnonzero(np.isin(sub.sensor, [k for k, _ in where])).tolist():
        out[i] = where.get((int(sub.sensor[i]), float(sub.ts[i])), 0)
    return out


def grading(rule: AnomalyRule) -> ThresholdRule:
    return ThresholdRule(
        id=rule.id,
        enabled=rule.enabled,
        selector=rule.selector,
        levels={4: float(min(rule.blue_after, rule.persist)), 3: float(rule.persist)},
        off_delay_s=rule.off_delay_s,
        category=rule.category,
    )


class AnomalyEvaluator(ThresholdEvaluator):
    seen = column()

    def __init__(self, spec: AnomalyRule, registry: Registry) -> None:
        self.spec = spec
        self.ensemble = self._ensemble(spec, 0)
        self.shadow: list[ShadowScores] = []
        self.side = np.zeros(0, np.int8)
        self._seen: tuple[ReadingBatch, Verdicts] = (ReadingBatch.empty(), Verdicts.empty(0))
        super().__init__(grading(spec), registry)

    @staticmethod
    def _ensemble(spec: AnomalyRule, capacity: int) -> Ensemble:
        return Ensemble(
            [build(d, capacity) for d in spec.detectors],
            capacity,
            threshold=spec.threshold,
            grace=spec.grace,
            adapt_after=spec.adapt_after,
            latch=spec.latch,
        )

    def written(self) -> Any:
        return self.spec

    def configure(
        self, rule: GradedRule | AnomalyRule, registry: Registry, now: float | None = None
    ) -> None:
        relearn = False
        if isinstance(rule, AnomalyRule):
            relearn = rule.detectors != self.spec.detectors
            self.spec = rule
            rule = grading(rule)
        if relearn:  # new models for every sensor
            self.ensemble = self._ensemble(self.spec, 0)
            self.table.drop(MODELS)
        # Models are columns of the rule's table: only for the sensors it applies to.
        self.ensemble.bind(self.table, MODELS)
        self.table.define({"seen": SEEN})
        super().configure(rule, registry)
        e, spec = self.ensemble, self.spec
        e.threshold, e.grace, e.adapt_after, e.latch = (
            spec.threshold, spec.grace, spec.adapt_after, spec.latch,
        )  # fmt: skip

    def evaluate(
        self, batch: ReadingBatch, registry: Registry, agree: np.ndarray | None = None
    ) -> list[Signal]:
        """The contract's step; ``side`` keeps each reading's anomaly side (+1 above, -1
        below what was expected, 0 not anomalous) for the rules it may raise."""
        signals, self.side, _, _ = self.judge(batch, registry)
        return signals

    def judge(
        self, batch: ReadingBatch, registry: Registry
    ) -> tuple[list[Signal], np.ndarray, Verdicts, np.ndarray]:
        """Signals, the side of every reading of ``batch`` (0 where not anomalous or not
        judged), and the verdicts of the readings judged (``index`` into ``batch``)."""
        side = np.zeros(len(batch), np.int8)
        index = np.flatnonzero(self.applies[batch.sensor]) if len(batch) else np.empty(0, int)
        if index.size:
            index = index[self.table.fresh(self.row[batch.sensor[index]], batch.ts[index])]
        if not index.size:
            return [], side, Verdicts.empty(0), index
        sub = batch.take(index)
        self.table.judged(self.row[sub.sensor], sub.ts)
        verdicts = self._verdicts(sub)
        side[index] = np.where(
            verdicts.anomalous, np.where(sub.value >= verdicts.expected, 1, -1), 0
        )
        # the run of anomalous readings goes through the one graded step; ``explain`` says
        # what was seen at the reading that changed the level
        self._seen = (sub, verdicts)
        signals = ThresholdEvaluator.evaluate(self, replace(sub, value=verdicts.run), registry)
        if self.spec.shadow:
            self._record(sub, verdicts, signals, registry)
            return [], np.zeros(len(batch), np.int8), verdicts, index
        return signals, side, verdicts, index

    def _verdicts(self, sub: ReadingBatch) -> Verdicts:
        """The ensemble's verdicts; a reading at or below the rule's ``floor`` (zero
        suppression) is normal without the models."""
        rows = self.row[sub.sensor]
        if self.spec.floor is None:
            return self.ensemble.run_batch(rows, sub.ts, sub.value)
        out = Verdicts.empty(len(sub))
        above = np.flatnonzero(sub.value > self.spec.floor)
        if above.size:
            out.put(above, self.ensemble.run_batch(rows[above], sub.ts[above], sub.value[above]))
        return out

    def explain(
        self, key: int, target: int, active: int, value: float, boosted: bool, at: int
    ) -> tuple[dict[str, Any], float]:
        sub, verdicts = self._seen
        expected, band = float(verdicts.expected[at]), float(verdicts.band[at])
        observed = float(sub.value[at])
        evidence = {
            "type": "anomaly",
            "detector": self.ensemble.detectors[int(verdicts.detector[at])].name,
            "score": round(float(verdicts.score[at]), 4),
            "threshold": self.spec.threshold,
            "expected": expected,
            "band": [expected - band, expected + band],
            "observed": observed,
            "anomalous_readings": int(verdicts.run[at]),
        }
        return evidence, observed

    def _record(
        self, sub: ReadingBatch, verdicts: Verdicts, signals: list[Signal], registry: Registry
    ) -> None:
        keys, index = np.unique(sub.sensor, return_inverse=True)
        ids = tuple(registry.by_key[k].id for k in keys.tolist())
        names = tuple(d.name for d in self.ensemble.detectors)
        levels = _levels_at(sub, signals, registry)
        v = verdicts
        scores = ShadowScores(
            self.spec.id, names, ids, index.astype(np.int32), sub.ts, v.score, v.detector,
            v.expected, sub.value, levels, v.anomalous, v.reported,
        )  # fmt: skip
        self.shadow.append(scores)

    def drain_shadow(self) -> list[ShadowScores]:
        out, self.shadow = self.shadow, []
        return out
