"""The detector contract.

A detector keeps one model per sensor (its own clone) in arrays indexed by sensor key, or in a
dict of per-sensor objects.  It is called in *rounds*: every key in one call is distinct, so a
round is exact whatever the micro-batch boundaries are.  For each round the caller first asks
for ``score`` (no state change), then calls ``learn`` with a mask of the readings that may
teach the model (river's contract: score first, then learn; anomalies do not teach).

``score`` returns a raw surprise (0 = as expected, larger = more surprising, in the
detector's own unit), the expected value and the half-width of the expected band, for the
explanation.  Raw scores are turned into likelihoods by ``rules.detectors.calibrate``, except
for a detector marked ``CALIBRATED``, whose raw score is already a likelihood score in [0, 1].

Anomalous readings never teach the model (``MODEL``).  A detector may still *recall* the
anomalies it has seen, apart from its model, so that the same anomaly coming back (a spike
that recurs every night) is not news the second time: recall is not learning what normal is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rules.state import Column, SensorTable, carried, restored


@dataclass
class Scores:
    raw: np.ndarray
    expected: np.ndarray
    band: np.ndarray


class ArrayState:
    """Per-sensor arrays named in ``STATE``: columns of a sensor table (``rules.state``), one
    row per sensor.  A detector on its own has a table of ``capacity`` rows; an anomaly rule
    binds its detectors into the rule's table, so the rule's rows move them all."""

    name: ClassVar[str]
    STATE: ClassVar[tuple[str, ...]] = ()
    # Arrays that make the learnt model (the rest of STATE is test state such as CUSUM sums).
    MODEL: ClassVar[tuple[str, ...]] = ()
    OBJECTS: ClassVar[tuple[str, ...]] = ()  # columns of Python objects (river models)

    def __init__(self, capacity: int) -> None:
        self.bind(SensorTable({}, capacity), "")  # untrained rows

    def __getattr__(self, name: str) -> np.ndarray:
        if name in type(self).STATE and "table" in self.__dict__:
            return self.table.data[self.prefix + name]
        raise AttributeError(name)

    def bind(self, table: SensorTable, prefix: str) -> None:
        """Keep this state in ``table``, columns ``{prefix}{name}``."""
        self.table, self.prefix = table, prefix
        table.define({prefix + name: self.column(name) for name in self.STATE})

    def column(self, name: str) -> Column:
        kind = object if name in self.OBJECTS else np.float64
        return Column(self.initial(name), kind, self.shape(name))

    def initial(self, name: str) -> Any:
        return 0.0

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of one sensor's entry (a scalar unless a detector keeps windows)."""
        return ()

    def export_state(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name in self.STATE:
            out.update(carried(name, self.column(name), getattr(self, name)[rows]))
        return out

    def import_state(self, rows: np.ndarray, state: dict[str, np.ndarray]) -> None:
        """Restore what matches this configuration (a snapshot of other settings is skipped:
        those sensors relearn)."""
        for name in self.STATE:
            values = restored(state, name, self.column(name), rows.shape[0])
            if values is not None:
                getattr(self, name)[rows] = values

    def reset(self, rows: np.ndarray) -> None:
        for name in self.STATE:
            getattr(self, name)[rows] = self.initial(name)

    def learn_moments(self, k: np.ndarray, x: np.ndarray, alpha: float, count: bool = True) -> None:
        """Exponentially weighted mean and variance (arrays ``mean``, ``var``, ``n``) of ``x``
        for keys ``k``; the weight is at least 1/n, so a new sensor starts from its own
        readings (cumulative averages), not from an arbitrary prior."""
        a = np.maximum(alpha, 1.0 / (self.n[k] + 1.0))
        d = x - self.mean[k]
        self.mean[k] += a * d
        self.var[k] = (1 - a) * (self.var[k] + a * d * d)
        if count:
            self.n[k] += 1

    def model_of(self, key: int) -> tuple[float, ...]:
        return tuple(float(getattr(self, name)[key]) for name in self.MODEL)


class Detector(ArrayState, ABC):
    CALIBRATED: ClassVar[bool] = False
    # Learns from a stuck sensor's repeats too (a detector of stuck values); the others are
    # not taught while a sensor repeats one value (``Ensemble.STUCK_AFTER``).
    LEARNS_REPEATS: ClassVar[bool] = False

    @abstractmethod
    def score(self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Scores: ...

    @abstractmethod
    def learn(
        self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray, teach: np.ndarray
    ) -> None:
        """Update the state of ``keys``; only rows where ``teach`` is true update the model."""
