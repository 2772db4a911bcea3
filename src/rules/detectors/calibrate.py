"""Calibration: raw detector scores become likelihoods that one setting can judge.

Per sensor and detector, a long exponentially weighted distribution of recent raw scores
(mean and variance) and a short average of the latest ones.  The short average is compared
with the long distribution; its Gaussian tail probability says how unlikely the current
behaviour is for *this* sensor.  The reported score is ``-log10(tail) / 10`` in [0, 1]:
0.5 means a one-in-100,000 event, whatever the sensor's noise or unit.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from rules.detectors.base import ArrayState

TAIL_FLOOR = 1e-10


class Calibrator(ArrayState):
    name = "calibration"
    STATE = ("n", "mean", "var", "short")
    MODEL = ("n", "mean", "var")

    def __init__(self, capacity: int, long_alpha: float = 0.0005, short_alpha: float = 0.3) -> None:
        self.long_alpha, self.short_alpha = long_alpha, short_alpha
        super().__init__(capacity)

    def propose(
        self, keys: np.ndarray, raw: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(likelihood score in [0, 1] of the proposed short average, that of the reading on
        its own, the proposed short average) without changing state."""
        short = self.short[keys] + self.short_alpha * (raw - self.short[keys])
        mean = self.mean[keys]
        sd = np.sqrt(self.var[keys]) + 1e-6 + 0.05 * np.abs(mean)
        tail = np.maximum(ndtr((mean - np.stack([short, raw])) / sd), TAIL_FLOOR)
        score = np.where(self.n[keys] >= 10, np.clip(-np.log10(tail) / 10.0, 0.0, 1.0), 0.0)
        return score[0], score[1], short

    def learn(
        self, keys: np.ndarray, values: np.ndarray, teach: np.ndarray, short: np.ndarray
    ) -> None:
        """``values`` are the raw scores and ``short`` their proposed short average; the short
        average always moves, the long distribution only learns from normal readings."""
        self.short[keys] = short
        self.learn_moments(keys[teach], values[teach], self.long_alpha)


class Passthrough(ArrayState):
    """For a detector whose raw score is already a likelihood score in [0, 1]."""

    name = "passthrough"
    STATE = ()

    def propose(
        self, keys: np.ndarray, raw: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return raw, raw, raw

    def learn(
        self, keys: np.ndarray, values: np.ndarray, teach: np.ndarray, short: np.ndarray
    ) -> None:
        return None
