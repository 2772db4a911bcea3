"""river models as detectors: one clone per sensor, scored before it learns.

These are per-reading Python models, so they are opt-in for the sensors that earn their cost.
Their models are an object column of the sensor table, pickled in snapshots (river models are
plain Python objects); snapshots are written and read only by riskmon's own processors.
"""

from __future__ import annotations

import pickle
from typing import Any, ClassVar

import numpy as np
from river import anomaly, drift

from rules.detectors.base import Detector, Scores


def _squash(z: float) -> float:
    return float(1.0 / (1.0 + np.exp(-np.clip(z, -50, 50) / 3.0)))


class RiverDetector(Detector):
    """Base for river-backed detectors: ``models[key]`` is the sensor's own clone."""

    STATE: ClassVar[tuple[str, ...]] = ("n", "prev", "models")
    MODEL = ()
    OBJECTS = ("models",)

    def __init__(self, capacity: int, **params: Any) -> None:
        self.params = params
        super().__init__(capacity)

    def initial(self, name: str) -> Any:
        return None if name == "models" else 0.0

    def make(self) -> Any:
        raise NotImplementedError

    def model(self, key: int) -> Any:
        """The sensor's own clone (made on its first reading)."""
        models = self.table.data[self.prefix + "models"]
        if models[key] is None:
            models[key] = self.make()
        return models[key]

    def model_of(self, key: int) -> tuple[float, ...]:
        model = self.table.data[self.prefix + "models"][key]
        return () if model is None else (float(hash(pickle.dumps(model))),)

    def features(self, key: int, value: float) -> dict[str, float]:
        n = self.n[key]
        return {"x": value, "dx": value - self.prev[key] if n else 0.0}

    def learn(
        self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray, teach: np.ndarray
    ) -> None:
        for key, value, ok in zip(keys.tolist(), values.tolist(), teach.tolist(), strict=True):
            if ok:
                self.model(key).learn_one(self.features(key, value))
                self.prev[key] = value
                self.n[key] += 1


class HalfSpaceTrees(RiverDetector):
    """river's Half-Space Trees over the reading and its step, each standardized by the
    sensor's running mean and deviation and squashed into [0, 1] (the trees' space)."""

    name = "hst"
    STATE = ("n", "prev", "models", "mean", "var")

    def make(self) -> Any:
        return anomaly.HalfSpaceTrees(**self.params)

    def features(self, key: int, value: float) -> dict[str, float]:
        sd = float(np.sqrt(self.var[key])) + 1e-9 + 1e-4 * abs(float(self.mean[key]))
        z = (value - self.mean[key]) / sd
        dz = (value - self.prev[key]) / sd if self.n[key] else 0.0
        return {"x": float(_squash(z)), "dx": float(_squash(dz))}

    def learn(
        self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray, teach: np.ndarray
    ) -> None:
        self.learn_moments(keys[teach], values[teach], 0.01, count=False)
        super().learn(keys, ts, values, teach)

    def score(self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Scores:
        raw = np.array(
            [
                self.model(k).score_one(self.features(k, v)) if self.n[k] >= 2 else 0.0
                for k, v in zip(keys.tolist(), values.tolist(), strict=True)
            ]
        )
        raw = -np.log1p(-np.minimum(raw, 1 - 1e-9))  # mass-based score -> surprise
        return Scores(raw, self.prev[keys], np.full(keys.shape[0], np.nan))


class AbsoluteDeviation(RiverDetector):
    """river's StandardAbsoluteDeviation: distance from the mean in standard deviations."""

    name = "sad"

    def make(self) -> Any:
        return anomaly.StandardAbsoluteDeviation()

    def learn(
        self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray, teach: np.ndarray
    ) -> None:
        for key, value, ok in zip(keys.tolist(), values.tolist(), teach.tolist(), strict=True):
            if ok:
                self.model(key).learn_one(None, value)
                self.prev[key] = value
                self.n[key] += 1

    def score(self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Scores:
        raw = np.array(
            [
                float(self.model(k).score_one(None, v)) if self.n[k] >= 2 else 0.0
                for k, v in zip(keys.tolist(), values.tolist(), strict=True)
            ]
        )
        return Scores(np.nan_to_num(raw), self.prev[keys], np.full(keys.shape[0], np.nan))


class Adwin(RiverDetector):
    """river's ADWIN adaptive window: distance of the reading from the window's mean, in
    the window's standard deviations; the window shrinks when the mean drifts."""

    name = "adwin"

    def make(self) -> Any:
        return drift.ADWIN(**self.params)  # type: ignore[no-untyped-call]

    def score(self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Scores:
        expected = np.array([float(self.model(k).estimation) for k in keys.tolist()])
        spread = np.array([float(self.model(k).variance) ** 0.5 for k in keys.tolist()])
        spread = spread + 1e-9 + 1e-4 * np.abs(expected)
        raw = np.where(self.n[keys] >= 10, np.abs(values - expected) / spread, 0.0)
        return Scores(raw, expected, 3 * spread)

    def learn(
        self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray, teach: np.ndarray
    ) -> None:
        for key, value, ok in zip(keys.tolist(), values.tolist(), teach.tolist(), strict=True):
            if ok:
                self.model(key).update(value)
                self.n[key] += 1
