"""Detectors that model sequences: which shapes of the latest steps a sensor shows.

Two families, written from the published ideas (no code from other projects):

- ``ArtCategories``: an adaptive-resonance (fuzzy ART) category learner over the latest
  ``m`` standardized steps and their Haar wavelet coefficients; a window that resonates with
  none of the sensor's categories is novel (the idea behind ARTime).
- ``ContextNovelty``: the contexts of quantised recent steps and what followed them; a step
  that its contexts did not predict is novel (the idea behind CAD OSE).

Both keep a fixed number of floats per sensor, learn only from normal steps, and are
vectorized across the sensors of a round (``rules.detectors.windowed`` does the steps).
"""

from __future__ import annotations

import numpy as np

from rules.detectors.windowed import Windowed

_Z = 4.0  # standardized steps beyond +-4 map to the edges of [0, 1]


def _unit(z: np.ndarray) -> np.ndarray:
    return np.asarray(np.clip((z + _Z) / (2 * _Z), 0.0, 1.0))


def haar(windows: np.ndarray) -> np.ndarray:
    """The detail coefficients of the Haar transform of each row (a power-of-two length m:
    m - 1 coefficients, coarsest last)."""
    out = []
    level = windows
    while level.shape[1] > 1:
        a, b = level[:, 0::2], level[:, 1::2]
        out.append((b - a) / 2)
        level = (a + b) / 2
    return np.concatenate(out, axis=1)


class ArtCategories(Windowed):
    """Fuzzy ART with complement coding over the window's standardized steps and its Haar
    details, each mapped to [0, 1].  A category is a box in that space; a window's match to
    it is the share of the window inside (1: within the box).  The raw score is how far the
    window lies outside the nearest box, along its farthest coordinate (0: inside one; the
    farthest coordinate, not the sum, so one step out of shape is not diluted by the
    others).  A normal window teaches the category it resonates
    with (match at least ``vigilance``: the box grows towards it at ``rate``) or, when none
    resonates, founds a new one, in place of the least recently used when all
    ``categories`` are taken.  Vigilance bounds a box's size, so the sensor's normal shapes
    stay in at most ``categories`` boxes of bounded size and a new shape stays novel."""

    name = "art"
    STATE = (*Windowed.WINDOW_STATE, "weights", "used_at")

    def __init__(  # ``m`` a power of two (Haar): ArtSpec checks it
        self,
        capacity: int,
        m: int = 8,
        categories: int = 64,
        vigilance: float = 0.9,
        rate: float = 1.0,
        alpha: float = 0.002,
        block: float = 0.0,
    ) -> None:
        self.categories, self.vigilance, self.rate = categories, vigilance, rate
        self.dims = 2 * m - 1
        super().__init__(capacity, m, alpha, block)

    def initial(self, name: str) -> float:
        return {"weights": np.nan, "used_at": -np.inf}.get(name, super().initial(name))

    def shape(self, name: str) -> tuple[int, ...]:
        shapes = {"weights": (self.categories, 2 * self.dims), "used_at": (self.categories,)}
        return shapes.get(name, super().shape(name))

    def model_of(self, key: int) -> tuple[float, ...]:
        return (*super().model_of(key), float(np.nansum(self.weights[key])))

    def _input(self, window: np.ndarray) -> np.ndarray:
        x = np.concatenate([_unit(window), _unit(haar(window))], axis=1)
        return np.concatenate([x, 1.0 - x], axis=1)  # complement coding: |I| = dims

    def _matches(self, keys: np.ndarray, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per key and category: the match (NaN for an empty category) and the choice."""
        w = self.weights[keys]
        overlap = np.minimum(inputs[:, None, :], w).sum(axis=2)
        match = overlap / self.dims
        choice = overlap / (1e-3 + w.sum(axis=2))
        return match, choice

    def novelty(self, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
        inputs = self._input(self.window(keys, values))
        outside = np.maximum(self.weights[keys] - inputs[:, None, :], 0.0).max(axis=2)
        nearest = np.min(np.where(np.isnan(outside), np.inf, outside), axis=1)
        enough = (self.n[keys] >= 4 * self.m) & np.isfinite(nearest)
        return np.where(enough, nearest, 0.0)

    def memorize(self, keys: np.ndarray, window: np.ndarray, teach: np.ndarray) -> None:
        rows = np.flatnonzero(teach & (self.n[keys] >= self.m))
        if not rows.size:
            return
        k, inputs = keys[rows], self._input(window[rows])
        match, choice = self._matches(k, inputs)
        resonant = match >= self.vigilance  # NaN (empty) compares false
        j = np.argmax(np.where(resonant, choice, -np.inf), axis=1)
        found = resonant[np.arange(k.size), j]
        j = np.where(found, j, np.argmin(self.used_at[k], axis=1))  # else the oldest slot
        w = self.weights[k, j]
        grown = self.rate * np.minimum(inputs, w) + (1 - self.rate) * w
        self.weights[k, j] = np.where(found[:, None], grown, inputs)
        self.used_at[k, j] = self.n[k]


class ContextNovelty(Windowed):
    """Each standardized step quantised to a level of ``width`` standard deviations; for
    every context length c from 1 to ``m`` - 1, how often the last c levels were seen and
    how often the current level followed them, in hashed tables of ``slots`` counts per
    sensor.  The raw score is the surprisal -log P(level | context) of the longest context
    seen at least ``FAMILIAR`` times (backing off to shorter ones, down to the empty context:
    how often the level was seen at all), P = (followed + 1/2) / (seen + 1): large for a
    level that never followed a familiar context, a step the sensor's history did not
    predict."""

    name = "context"
    STATE = (*Windowed.WINDOW_STATE, "contexts", "pairs")
    FAMILIAR = 3  # a context seen this often predicts
    _PRIME = np.array([1_000_003, 998_244_353, 1_000_000_007, 754_974_721] * 16, np.int64)

    def __init__(
        self,
        capacity: int,
        m: int = 4,
        width: float = 1.0,
        slots: int = 1024,
        alpha: float = 0.002,
        block: float = 0.0,
    ) -> None:
        self.width, self.slots = width, slots
        super().__init__(capacity, m, alpha, block)

    def shape(self, name: str) -> tuple[int, ...]:
        return (self.slots,) if name in ("contexts", "pairs") else super().shape(name)

    def model_of(self, key: int) -> tuple[float, ...]:
        return (*super().model_of(key), float(self.pairs[key].sum()))

    def _slots(self, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row and context length (0 to m - 1, longest last): the table slot of the
        context and of the context followed by the current level."""
        levels = np.round(window / self.width).astype(np.int64) + 1000
        slots_c, slots_p = [], []
        for c in range(self.m):
            ctx = levels[:, self.m - 1 - c : -1]
            code = (ctx * self._PRIME[:c]).sum(axis=1) + c * 7_919
            slots_c.append(code % self.slots)
            slots_p.append((code * 31 + levels[:, -1] * 1_000_033) % self.slots)
        return np.stack(slots_c, axis=1), np.stack(slots_p, axis=1)

    def novelty(self, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
        sc, sp = self._slots(self.window(keys, values))
        rows = np.arange(keys.size)[:, None]
        seen = self.contexts[keys][rows, sc]
        followed = np.minimum(self.pairs[keys][rows, sp], seen)
        # Back off to the longest context seen FAMILIAR times (the empty one always is, once
        # the sensor has that many steps).
        familiar = seen >= self.FAMILIAR
        longest = self.m - 1 - np.argmax(familiar[:, ::-1], axis=1)
        r = np.arange(keys.size)
        surprisal = -np.log((followed[r, longest] + 0.5) / (seen[r, longest] + 1.0))
        enough = (self.n[keys] >= 4 * self.m) & familiar.any(axis=1)
        return np.where(enough, surprisal, 0.0)

    def memorize(self, keys: np.ndarray, window: np.ndarray, teach: np.ndarray) -> None:
        rows = np.flatnonzero(teach & (self.n[keys] >= self.m))
        if not rows.size:
            return
        k = keys[rows]
        sc, sp = self._slots(window[rows])
        k = np.repeat(k, sc.shape[1])
        np.add.at(self.contexts, (k, sc.ravel()), 1.0)  # slots may repeat: add.at counts each
        np.add.at(self.pairs, (k, sp.ravel()), 1.0)
