"""Graded rules on a value derived from each sensor's recent history: rate of change over a
span, or an aggregate over a rolling window.  The derived value then goes through the same
graded state machine (hysteresis, on/off delays) as a threshold.

History is kept per sensor in a small list of (event time, value); only sensors under such a
rule keep one.  Per-reading Python is used here because these rules apply to few sensor kinds
(displacement, rainfall, pressure), not to every reading.
"""

from __future__ import annotations

import numpy as np

from monitor.model import ReadingBatch, Signal
from monitor.registry import Registry
from rules.spec import DriftRule, GradedRule, RateRule, SpikeRule, WindowRule
from rules.threshold import ThresholdEvaluator


def robust_z(value: float, previous: list[float], min_scale: float) -> float:
    med = float(np.median(previous))
    mad = float(np.median(np.abs(np.asarray(previous) - med)))
    return abs(value - med) / max(1.4826 * mad, min_scale)


History = list[tuple[float, float]]


def drop_before(hist: History, cutoff: float) -> None:
    """Drop the readings at or before ``cutoff`` (the newest one always stays)."""
    i = 0
    while i < len(hist) - 1 and hist[i][0] <= cutoff:
        i += 1
    if i:
        del hist[:i]


def _slope(hist: History, since: float) -> float:
    """Least-squares slope of the readings newer than ``since`` (value units per second)."""
    points = np.array([p for p in hist if p[0] >= since] or list(hist))
    t = points[:, 0] - points[:, 0].mean()
    denom = float((t * t).sum())
    return float((t * (points[:, 1] - points[:, 1].mean())).sum() / denom) if denom else 0.0


class DerivedEvaluator(ThresholdEvaluator):
    rule: RateRule | WindowRule | SpikeRule | DriftRule

    def __init__(
        self, rule: RateRule | WindowRule | SpikeRule | DriftRule, registry: Registry
    ) -> None:
        self.history: dict[int, History] = {}
        self.seen = np.full(registry.capacity, -np.inf)
        super().__init__(rule, registry)

    @property
    def horizon(self) -> float:
        rule = self.rule
        if isinstance(rule, DriftRule):
            return rule.window_s + rule.baseline_s
        return rule.span_s if isinstance(rule, RateRule) else rule.window_s

    def configure(self, rule: GradedRule, registry: Registry) -> None:
        super().configure(rule, registry)
        if registry.capacity > self.seen.shape[0]:
            seen = np.full(registry.capacity, -np.inf)
            seen[: self.seen.shape[0]] = self.seen
            self.seen = seen

    def derive(self, batch: ReadingBatch) -> ReadingBatch:
        """Derived value for each applicable reading (NaN where it cannot be judged yet)."""
        mask = self.applies[batch.sensor]
        sub = batch.take(mask)
        out = np.full(len(sub), np.nan)
        horizon = self.horizon
        rule = self.rule
        for j in range(len(sub)):
            key, ts, value = int(sub.sensor[j]), float(sub.ts[j]), float(sub.value[j])
            if ts <= self.seen[key]:
                continue  # duplicate or out of order: already judged
            self.seen[key] = ts
            hist = self.history.get(key)
            if hist is None:
                hist = self.history[key] = []
            hist.append((ts, value))
            if isinstance(rule, DriftRule):
                drop_before(hist, ts - horizon)
                recent = [v for t, v in hist if t > ts - rule.window_s]
                base = [v for t, v in hist if t <= ts - rule.window_s]
                if len(recent) >= rule.min_points and len(base) >= rule.min_points:
                    shift = sum(recent) / len(recent) - sum(base) / len(base)
                    out[j] = abs(shift) if rule.absolute else shift
            elif isinstance(rule, SpikeRule):
                drop_before(hist, ts - horizon)
                previous = [v for _, v in list(hist)[:-1]]
                if len(previous) >= rule.min_points:
                    out[j] = robust_z(value, previous, rule.min_scale)
            elif isinstance(rule, RateRule):
                # Keep the last reading at or before the span's start: the rate spans it all.
                keep = next(
                    (i for i in range(len(hist) - 2) if hist[i + 1][0] > ts - horizon), None
                )
                if keep is None:
                    keep = max(len(hist) - 2, 0)
                del hist[:keep]
                t0, v0 = hist[0]
                if t0 < ts and ts - t0 >= rule.min_coverage * horizon:
                    if rule.method == "regression" and len(hist) >= 3:
                        rate = _slope(hist, ts - horizon) * rule.per_s
                    else:
                        rate = (value - v0) / (ts - t0) * rule.per_s
                    out[j] = abs(rate) if rule.absolute else rate
            else:
                drop_before(hist, ts - horizon)
                values = [v for _, v in hist]
                if rule.agg == "sum":
                    out[j] = sum(values)
                elif rule.agg == "mean":
                    out[j] = sum(values) / len(values)
                else:
                    out[j] = max(values) if rule.agg == "max" else min(values)
        keep = ~np.isnan(out)
        derived = sub.take(keep)
        derived.value = out[keep]
        return derived

    def evaluate(
        self, batch: ReadingBatch, registry: Registry, agree: np.ndarray | None = None
    ) -> list[Signal]:
        # ``agree`` (an agreeing anomaly) raises set-points on the reading itself only.
        if not len(batch) or not self.applies[batch.sensor].any():
            return []
        signals = super().evaluate(self.derive(batch), registry)
        rule = self.rule
        if isinstance(rule, WindowRule):
            kind = f"window {rule.agg}"
        else:
            kind = {RateRule: "rate", SpikeRule: "spike (robust z)", DriftRule: "drift"}[type(rule)]
        for signal in signals:
            signal.evidence.update({"type": kind, "horizon_s": self.horizon})
        return signals

    STATE: tuple[str, ...] = (*ThresholdEvaluator.STATE, "seen")

    def export_state(self, keys: np.ndarray) -> dict[str, np.ndarray]:
        state = super().export_state(keys)
        lengths: list[int] = []
        times: list[float] = []
        values: list[float] = []
        for key in keys.tolist():
            hist = self.history.get(key, ())
            lengths.append(len(hist))
            times.extend(t for t, _ in hist)
            values.extend(v for _, v in hist)
        state.update(
            hist_len=np.array(lengths, np.int64),
            hist_ts=np.array(times, np.float64),
            hist_value=np.array(values, np.float64),
        )
        return state

    def import_state(self, keys: np.ndarray, state: dict[str, np.ndarray]) -> None:
        super().import_state(keys, state)
        if "hist_len" not in state:
            return
        pos = 0
        for key, n in zip(keys.tolist(), state["hist_len"].tolist(), strict=False):
            ts, vs = state["hist_ts"][pos : pos + n], state["hist_value"][pos : pos + n]
            self.history[key] = list(zip(ts.tolist(), vs.tolist(), strict=True))
            pos += n

    def restore(self, key: int, level: int, last_ts: float | None = None) -> None:
        super().restore(key, level, last_ts)
        if last_ts is not None and key < self.seen.shape[0]:
            self.seen[key] = max(self.seen[key], last_ts)

    def reset(self, keys: np.ndarray, now: float) -> None:
        super().reset(keys, now)
        self.seen[keys] = -np.inf
        for key in keys.tolist():
            self.history.pop(key, None)
