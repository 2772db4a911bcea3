"""Vectorized numpy detectors: exact streaming models that are cheap over a batch.

Every model warms up with cumulative averages (the weight is at least 1/n), so the first
readings of a sensor are not judged against an arbitrary prior.
"""

from __future__ import annotations

import numpy as np

from rules.detectors.base import Detector, Scores
from rules.detectors.windowed import Windowed, spread

_MAX = 1e6


def _weight(alpha: float, n: np.ndarray) -> np.ndarray:
    return np.maximum(alpha, 1.0 / (n + 1.0))


class EwmaZ(Detector):
    """Distance from an exponentially weighted mean, in exponentially weighted standard
    deviations (level shifts and spikes)."""

    name = "ewma"
    STATE = ("n", "mean", "var")
    MODEL = STATE

    def __init__(self, capacity: int, alpha: float = 0.01) -> None:
        self.alpha = alpha
        super().__init__(capacity)

    def score(self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Scores:
        mean = self.mean[keys]
        sd = spread(self.var[keys], mean)
        raw = np.where(self.n[keys] >= 2, np.minimum(np.abs(values - mean) / sd, _MAX), 0.0)
        return Scores(raw, mean, 3 * sd)

    def learn(
        self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray, teach: np.ndarray
    ) -> None:
        self.learn_moments(keys[teach], values[teach], self.alpha)


class DiffZ(Detector):
    """Surprise of the step from the last normal reading (changes in dynamics)."""

    name = "diff"
    STATE = ("n", "prev", "mean", "var")
    MODEL = STATE

    def __init__(self, capacity: int, alpha: float = 0.01) -> None:
        self.alpha = alpha
        super().__init__(capacity)

    def score(self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Scores:
        prev, mean = self.prev[keys], self.mean[keys]
        sd = spread(self.var[keys], prev)
        step = values - prev
        raw = np.where(self.n[keys] >= 3, np.minimum(np.abs(step - mean) / sd, _MAX), 0.0)
        return Scores(raw, prev + mean, 3 * sd)

    def learn(
        self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray, teach: np.ndarray
    ) -> None:
        k, x = keys[teach], values[teach]
        n = self.n[k]
        step = np.where(n >= 1, x - self.prev[k], 0.0)
        learnt = n >= 1
        a = _weight(self.alpha, np.maximum(n - 1, 0))
        d = step - self.mean[k]
        self.mean[k] += np.where(learnt, a * d, 0.0)
        self.var[k] = np.where(learnt, (1 - a) * (self.var[k] + a * d * d), self.var[k])
        self.prev[k] = x
        self.n[k] += 1


class HoltResidual(Detector):
    """Forecast residual of Holt's linear trend model (level + trend), in units of the mean
    absolute residual: a curve that starts to bend, a rise that does not follow its trend."""

    name = "holt"
    STATE = ("n", "level", "trend", "scale")
    MODEL = STATE

    def __init__(self, capacity: int, alpha: float = 0.3, beta: float = 0.05) -> None:
        self.alpha, self.beta = alpha, beta
        super().__init__(capacity)

    def score(self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Scores:
        forecast = self.level[keys] + self.trend[keys]
        scale = 1.25 * self.scale[keys] + 1e-9 + 1e-4 * np.abs(forecast)
        raw = np.where(self.n[keys] >= 3, np.minimum(np.abs(values - forecast) / scale, _MAX), 0.0)
        return Scores(raw, forecast, 3 * scale)

    def learn(
        self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray, teach: np.ndarray
    ) -> None:
        k, x = keys[teach], values[teach]
        n = self.n[k]
        first = n == 0
        level, trend = self.level[k], self.trend[k]
        forecast = level + trend
        new_level = np.where(first, x, self.alpha * x + (1 - self.alpha) * forecast)
        new_trend = np.where(
            first | (n == 1),
            np.where(first, 0.0, x - level),
            self.beta * (new_level - level) + (1 - self.beta) * trend,
        )
        a = _weight(0.01, np.maximum(n - 1, 0))
        resid = np.abs(x - forecast)
        self.scale[k] = np.where(first, 0.0, self.scale[k] + a * (resid - self.scale[k]))
        self.level[k], self.trend[k] = new_level, new_trend
        self.n[k] += 1


class Cusum(Detector):
    """Two-sided CUSUM of the standardized reading against a slow baseline: slow drifts that
    no single reading shows.  ``k`` is the slack in standard deviations; the sums restart
    once they have signalled (an anomalous reading)."""

    name = "cusum"
    STATE = ("n", "mean", "var", "pos", "neg")
    MODEL = ("n", "mean", "var")

    def __init__(self, capacity: int, alpha: float = 0.002, k: float = 0.5) -> None:
        self.alpha, self.k = alpha, k
        super().__init__(capacity)

    def _sums(
        self, keys: np.ndarray, values: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        mean = self.mean[keys]
        sd = spread(self.var[keys], mean)
        r = np.clip((values - mean) / sd, -1000, 1000)
        pos = np.minimum(np.maximum(0.0, self.pos[keys] + r - self.k), 1e4)
        neg = np.minimum(np.maximum(0.0, self.neg[keys] - r - self.k), 1e4)
        return pos, neg, mean, sd

    def score(self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Scores:
        pos, neg, mean, sd = self._sums(keys, values)
        raw = np.where(self.n[keys] >= 10, np.maximum(pos, neg), 0.0)
        return Scores(raw, mean, 3 * sd)

    def learn(
        self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray, teach: np.ndarray
    ) -> None:
        pos, neg, _, _ = self._sums(keys, values)
        restart = (self.n[keys] < 10) | ~teach  # warming up, or the sums have signalled
        self.pos[keys] = np.where(restart, 0.0, pos)
        self.neg[keys] = np.where(restart, 0.0, neg)
        self.learn_moments(keys[teach], values[teach], self.alpha)


class RangeBreakout(Detector):
    """A reading beyond every value the sensor has shown, by more than ``tol`` of that range:
    a new extreme.  The range is the model (normal readings widen it); the extremes of an
    anomalous episode are recalled beside it once the episode is over, so a recurring extreme
    is reported once (a persisting one stays anomalous).  Both contract towards the readings
    by ``alpha`` per reading, so a range from long ago fades.
    The score is already a likelihood score: 1 beyond the range (never seen), else 0."""

    name = "range"
    CALIBRATED = True
    STATE = ("n", "lo", "hi", "seen_lo", "seen_hi", "episode_lo", "episode_hi")
    MODEL = ("n", "lo", "hi")

    def __init__(self, capacity: int, tol: float = 0.02, alpha: float = 1e-5) -> None:
        self.tol, self.alpha = tol, alpha
        super().__init__(capacity)

    def initial(self, name: str) -> float:
        return 0.0 if name == "n" else np.nan

    def _bounds(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo = np.fmin(self.lo[keys], self.seen_lo[keys])
        hi = np.fmax(self.hi[keys], self.seen_hi[keys])
        return lo, hi

    def score(self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Scores:
        lo, hi = self._bounds(keys)
        mid = (lo + hi) / 2
        width = np.maximum(hi - lo, 1e-9 + 1e-4 * np.abs(mid))
        excess = np.maximum(values - hi, lo - values) / width
        ok = (self.n[keys] >= 2) & (excess > self.tol)
        raw = np.where(ok, 1.0, 0.0)
        return Scores(raw, mid, width / 2)

    def _widen(self, lo: np.ndarray, hi: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, ...]:
        lo, hi = np.fmin(lo, x), np.fmax(hi, x)
        return lo + self.alpha * (x - lo), hi - self.alpha * (hi - x)

    def learn(
        self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray, teach: np.ndarray
    ) -> None:
        k, x = keys[~teach], values[~teach]
        self.episode_lo[k], self.episode_hi[k] = (
            np.fmin(self.episode_lo[k], x),
            np.fmax(self.episode_hi[k], x),
        )
        k, x = keys[teach], values[teach]  # a normal reading: any episode is over
        self.lo[k], self.hi[k] = self._widen(self.lo[k], self.hi[k], x)
        seen_lo = np.fmin(self.seen_lo[k], self.episode_lo[k])
        seen_hi = np.fmax(self.seen_hi[k], self.episode_hi[k])
        self.seen_lo[k], self.seen_hi[k] = self._widen(seen_lo, seen_hi, x)
        self.episode_lo[k], self.episode_hi[k] = np.nan, np.nan
        self.n[k] += 1


class Stuck(Detector):
    """A sensor stuck on one value: more identical readings in a row (within ``tol`` of the
    value) than the sensor has ever shown, and more than ``min_run``.  The longest normal run
    is the model; a run that was reported is recalled beside it, so a sensor that recurrently
    holds a value for that long is reported once.  Already a likelihood score: 1 while
    stuck beyond the record, else 0."""

    name = "stuck"
    CALIBRATED = True
    LEARNS_REPEATS = True
    STATE = ("n", "prev", "run", "best", "seen_best")
    MODEL = ("n", "best")

    def __init__(self, capacity: int, min_run: int = 5, tol: float = 0.0) -> None:
        self.min_run, self.tol = min_run, tol
        super().__init__(capacity)

    def _runs(self, keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        prev = self.prev[keys]
        same = (self.n[keys] >= 1) & (np.abs(values - prev) <= self.tol * np.abs(prev))
        run = np.where(same, self.run[keys] + 1, 0.0)
        limit = np.maximum(np.maximum(self.best[keys], self.seen_best[keys]), self.min_run)
        return run, limit

    def score(self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Scores:
        run, limit = self._runs(keys, values)
        return Scores(np.where(run > limit, 1.0, 0.0), self.prev[keys], np.zeros(keys.shape[0]))

    def learn(
        self, keys: np.ndarray, ts: np.ndarray, values: np.ndarray, teach: np.ndarray
    ) -> None:
        run, limit = self._runs(keys, values)
        ended = run == 0
        finished = self.run[keys]
        reported = finished > limit  # the limit has not moved since the run began
        self.best[keys] = np.where(
            ended & ~reported, np.maximum(self.best[keys], finished), self.best[keys]
        )
        self.seen_best[keys] = np.where(
            ended & reported, np.maximum(self.seen_best[keys], finished), self.seen_best[keys]
        )
        self.run[keys], self.prev[keys] = run, values
        self.n[keys] += teach  # readings taught


class PatternNN(Windowed):
    """Distance from the latest ``m`` steps (``rules.detectors.windowed``) to their nearest
    neighbour among the last ``memory`` such windows: a pattern the sensor has not shown
    before.  The windows of anomalous readings do not join that memory; the last ``recall``
    of them are kept apart and count once their episode is over, so an anomaly that comes
    back is no longer novel (a persisting one stays novel).  Costs ``(memory + recall) x m``
    floats per sensor, so it is meant for the sensors that earn it, not as a default for
    every sensor."""

    name = "pattern"
    # ``bank`` holds ``memory`` normal windows, then ``recall`` anomalous ones;
    # ``recalled_at`` is the step count at which each of the latter was kept.
    STATE = (*Windowed.WINDOW_STATE, "bank", "recalled_at")

    def __init__(
        self,
        capacity: int,
        m: int = 8,
        memory: int = 1000,
        recall: int = 32,
        alpha: float = 0.002,
        block: float = 0.0,
    ) -> None:
        self.memory, self.recall = memory, recall
        super().__init__(capacity, m, alpha, block)

    def initial(self, name: str) -> float:
        return {"bank": np.nan, "recalled_at": -np.inf}.get(name, super().initial(name))

    def shape(self, name: str) -> tuple[int, ...]:
        shapes = {"bank": (self.memory + self.recall, self.m), "recalled_at": (self.recall,)}
        return shapes.get(name, super().shape(name))

    def model_of(self, key: int) -> tuple[float, ...]:
        return (*super().model_of(key), float(np.nansum(self.bank[key, : self.memory])))

    def novelty(self, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
        window = self.window(keys, values)
        bank = self.bank[keys]
        dist = np.sqrt(np.nansum((bank - window[:, None, :]) ** 2, axis=2))
        valid = ~np.isnan(bank[:, :, 0])
        dist = np.where(valid, dist, np.inf)
        # Exclude the latest m windows (they overlap the current one); recalled anomalies are
        # excluded only when they are that recent.
        slot = self.n[keys].astype(np.int64)[:, None] - 1 - np.arange(self.m)[None, :]
        rows = np.arange(keys.shape[0])[:, None]
        dist[rows, slot % self.memory] = np.inf
        at = self.recalled_at[keys]
        fresh = (self.n[keys][:, None] - at <= self.m) | (at > self.taught_at[keys][:, None])
        dist[:, self.memory :] = np.where(fresh, np.inf, dist[:, self.memory :])
        nearest = dist.min(axis=1)
        enough = self.n[keys] >= 4 * self.m
        return np.where(enough & np.isfinite(nearest), nearest / np.sqrt(self.m), 0.0)

    def memorize(self, keys: np.ndarray, window: np.ndarray, teach: np.ndarray) -> None:
        n = self.n[keys].astype(np.int64)
        enough = n[:, None] >= self.m
        slot = n % self.memory
        self.bank[keys, slot] = np.where(enough & teach[:, None], window, self.bank[keys, slot])
        at = np.argmin(self.recalled_at[keys], axis=1)  # the oldest (or an empty) recall slot
        recall = enough[:, 0] & ~teach
        kept = self.memory + at
        self.bank[keys, kept] = np.where(recall[:, None], window, self.bank[keys, kept])
        self.recalled_at[keys, at] = np.where(recall, n, self.recalled_at[keys, at])
