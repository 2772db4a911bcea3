"""The base of the detectors of shape: they judge the latest ``m`` steps of a sensor.

A step is a reading, or with ``block`` seconds the mean of the readings of one block of that
length (blocks without readings are skipped): the shape of the last ``m`` blocks, such as a
daily demand cycle whose rise does not come, when ``m`` x ``block`` spans it.  A block is
judged when the first reading of the next one arrives; that score holds until the next block
closes, and the verdict of the closing reading decides whether the block teaches.

Each step is standardized by the sensor's running mean and deviation (taught by normal steps
only), so a window is a shape in the sensor's own unit of noise.  A subclass says how novel
a window is (``novelty``) and what it learns from one (``memorize``).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np

from rules.detectors.base import Detector, Scores


def spread(var: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """A standard deviation with a floor relative to the level, so a flat signal that moves
    a little is surprising but not infinitely so."""
    return np.asarray(np.sqrt(var) + 1e-9 + 1e-4 * np.abs(mean))


class Windowed(Detector):
    WINDOW_STATE: ClassVar[tuple[str, ...]] = (
        "n", "mean", "var", "taught_at", "recent", "block_at", "block_sum", "block_count",
        "held",
    )  # fmt: skip
    MODEL = ("mean", "var")
    CLIP: ClassVar[float] = 20.0  # standardized steps beyond this are clipped

    def __init__(self, capacity: int, m: int, alpha: float, block: float) -> None:
        self.m, self.alpha, self.block = m, alpha, block
        super().__init__(capacity)

    def initial(self, name: str) -> float:
        return np.nan if name == "block_at" else 0.0

    def shape(self, name: str) -> tuple[int, ...]:
        return (self.m,) if name == "recent" else ()

    def window(self, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The latest ``m`` standardized steps, ``values`` (one step per key) the newest."""
        mean = self.mean[keys]
        sd = spread(self.var[keys], mean)
        z = np.clip((values - mean) / sd, -self.CLIP, self.CLIP)
        return np.concatenate([self.recent[keys][:, 1:], z[:, None]], axis=1)

    def _closing(self, keys: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each reading's block, and whether it closes the sensor's current block (a reading
        from an earlier block joins the current one)."""
        at = np.floor(ts / self.block)
        return at, (at > self.block_at[keys]) & (self.block_count[keys] > 0)

    def _block_means(self, keys: np.ndarray) -> np.ndarray:
        return np.asarray(self.block_sum[keys] / self.block_count[keys])

    def score(self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Scores:
        if not self.block:
            return self.explained(keys, self.novelty(keys, values))
        _, closes = self._closing(keys, ts)
        raw = self.held[keys].copy()
        if closes.any():
            k = keys[closes]
            raw[closes] = self.novelty(k, self._block_means(k))
        return self.explained(keys, raw)

    def learn(
        self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray, teach: np.ndarray
    ) -> None:
        if not self.block:
            self._step(keys, values, teach)
            return
        at, closes = self._closing(keys, ts)
        k = keys[closes]
        if k.size:
            means = self._block_means(k)
            self.held[k] = self.novelty(k, means)
            self._step(k, means, teach[closes])
            self.block_sum[k], self.block_count[k] = 0.0, 0.0
        self.block_at[keys] = np.fmax(self.block_at[keys], at)
        self.block_sum[keys] += values
        self.block_count[keys] += 1

    def explained(self, keys: np.ndarray, raw: np.ndarray) -> Scores:
        """``raw`` with the sensor's expected value and band (from its value model)."""
        mean = self.mean[keys]
        return Scores(raw, mean, 3 * spread(self.var[keys], mean))

    def _step(self, keys: np.ndarray, values: np.ndarray, teach: np.ndarray) -> None:
        window = self.window(keys, values)
        self.memorize(keys, window, teach)
        self.recent[keys] = window
        self.taught_at[keys] = np.where(teach, self.n[keys], self.taught_at[keys])
        self.learn_moments(keys[teach], values[teach], self.alpha, count=False)
        self.n[keys] += 1

    @abstractmethod
    def novelty(self, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The raw novelty of the window that ``values`` (one step per key) completes, 0
        until the sensor has enough steps; no state changes."""

    @abstractmethod
    def memorize(self, keys: np.ndarray, window: np.ndarray, teach: np.ndarray) -> None:
        """Learn from the window of this step (``n`` still counts the steps before it)."""
