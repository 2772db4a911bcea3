"""One anomaly rule's detector set over all its sensors.

Per round (distinct sensors): every detector scores, each score is calibrated into a
likelihood score (a detector marked ``CALIBRATED`` gives one itself), the highest one speaks
for the reading; the reading is anomalous when that score reaches the threshold and the
reading on its own reaches half of it.  Then the models
learn: a reading judged anomalous does not teach them, unless the sensor has been anomalous for
``adapt_after`` readings in a row (a new normal that the models must follow).  Nothing is
judged during a sensor's first ``grace`` readings.

``reported`` is the score of an episode's first reading: while readings are anomalous and for
``latch`` readings after the last of them, readings report 0, so one episode is one alarm
(this is the score the NAB evaluation writes; alerts are graded from ``anomalous``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rules.detectors.base import ArrayState, Detector
from rules.detectors.calibrate import Calibrator, Passthrough
from rules.state import SensorTable


@dataclass
class Verdicts:
    """Per reading: the calibrated score, the detector that gave it, its raw score, the
    expected value and band half-width, and whether the reading is anomalous."""

    score: np.ndarray
    detector: np.ndarray
    raw: np.ndarray
    expected: np.ndarray
    band: np.ndarray
    anomalous: np.ndarray
    reported: np.ndarray
    run: np.ndarray  # anomalous readings in a row up to this one (0 when normal)

    @classmethod
    def empty(cls, n: int) -> Verdicts:
        return cls(
            np.zeros(n), np.zeros(n, np.int64), np.zeros(n), np.full(n, np.nan),
            np.full(n, np.nan), np.zeros(n, bool), np.zeros(n), np.zeros(n),
        )  # fmt: skip

    def put(self, idx: np.ndarray, other: Verdicts) -> None:
        for name in (
            "score",
            "detector",
            "raw",
            "expected",
            "band",
            "anomalous",
            "reported",
            "run",
        ):
            getattr(self, name)[idx] = getattr(other, name)


class Ensemble(ArrayState):
    """Detectors with their calibrators, scored and taught one round at a time.

    A sensor that repeats its reading exactly ``STUCK_AFTER`` times in a row is stuck: its
    readings teach no model from then on (but a detector of stuck values, ``LEARNS_REPEATS``),
    so when it recovers its models still know its real variance (a model taught a stuck
    period learns zero variance and pages on every normal reading after)."""

    name = "ensemble"
    STATE = ("seen", "run", "quiet", "last", "same")
    STUCK_AFTER = 5

    def __init__(
        self,
        detectors: Sequence[Detector],
        capacity: int,
        threshold: float,
        grace: int,
        adapt_after: int,
        latch: int = 0,
    ) -> None:
        self.detectors = list(detectors)
        self.calibrators: list[Calibrator | Passthrough] = [
            Passthrough(capacity) if det.CALIBRATED else Calibrator(capacity)
            for det in self.detectors
        ]
        self.threshold, self.grace, self.adapt_after = threshold, grace, adapt_after
        self.latch = latch
        super().__init__(capacity)

    def initial(self, name: str) -> Any:
        return np.nan if name == "last" else 0.0

    def reset(self, keys: np.ndarray) -> None:
        super().reset(keys)
        for part in (*self.detectors, *self.calibrators):
            part.reset(keys)

    def bind(self, table: SensorTable, prefix: str) -> None:
        """Every part's columns go into ``table``: ``{prefix}ensemble.``, ``{prefix}d0.ewma.``,
        ``{prefix}c0.`` and so on."""
        super().bind(table, f"{prefix}ensemble.")
        for name, part in self.parts().items():
            if part is not self:
                part.bind(table, f"{prefix}{name}.")

    def parts(self) -> dict[str, ArrayState]:
        out: dict[str, ArrayState] = {"ensemble": self}
        for i, (det, cal) in enumerate(zip(self.detectors, self.calibrators, strict=True)):
            out[f"d{i}.{det.name}"] = det
            out[f"c{i}"] = cal
        return out

    def step(self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Verdicts:
        """Score then learn one round; every key appears once."""
        n = keys.shape[0]
        out = Verdicts.empty(n)
        raws, shorts = [], []
        instant = np.zeros(n)
        for i, (det, cal) in enumerate(zip(self.detectors, self.calibrators, strict=True)):
            scores = det.score(keys, ts, values)
            likelihood, alone, short = cal.propose(keys, scores.raw)
            instant = np.maximum(instant, alone)
            raws.append(scores.raw)
            shorts.append(short)
            better = likelihood > out.score
            if i == 0:
                better[:] = True
            out.score = np.where(better, likelihood, out.score)
            out.detector = np.where(better, i, out.detector)
            out.raw = np.where(better, scores.raw, out.raw)
            out.expected = np.where(better, scores.expected, out.expected)
            out.band = np.where(better, scores.band, out.band)
        warm = self.seen[keys] >= self.grace
        out.score = np.where(warm, out.score, 0.0)
        # The recent average must be unlikely, and so must the reading itself (a spike's
        # echo in the average is not a persisting anomaly).
        out.anomalous = (out.score >= self.threshold) & (instant >= self.threshold / 2)
        run = np.where(out.anomalous, self.run[keys] + 1, 0)
        quiet = self.quiet[keys]
        out.reported = np.where(quiet > 0, 0.0, out.score)
        self.quiet[keys] = np.where(out.anomalous, self.latch, np.maximum(quiet - 1, 0))
        same = np.where(values == self.last[keys], self.same[keys] + 1, 0)
        self.last[keys], self.same[keys] = values, same
        teach = ~out.anomalous | (run > self.adapt_after)
        moving = teach & (same < self.STUCK_AFTER)
        for det, cal, raw, short in zip(
            self.detectors, self.calibrators, raws, shorts, strict=True
        ):
            taught = teach if det.LEARNS_REPEATS else moving
            det.learn(keys, ts, values, taught)
            cal.learn(keys, raw, taught, short)
        self.run[keys] = run
        out.run = run.astype(np.float64)
        self.seen[keys] += 1
        return out

    def run_batch(self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Verdicts:
        """Judge readings in order, in rounds of distinct sensors."""
        n = keys.shape[0]
        out = Verdicts.empty(n)
        if not n:
            return out
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        counts = np.diff(np.r_[starts, n])
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n) - np.repeat(starts, counts)
        for r in range(int(rank.max()) + 1):
            idx = np.flatnonzero(rank == r)
            out.put(idx, self.step(keys[idx], ts[idx], values[idx]))
        return out
