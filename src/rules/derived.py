"""Graded rules on a value derived from each sensor's recent history: rate of change over a
span, an aggregate over a rolling window, spikes against the recent median, drift of the recent
mean against a baseline.  The derived value then goes through the same graded state machine
(hysteresis, on/off delays) as a threshold.

History is bounded: a ring of time buckets per sensor (``rules.windows``), or for spikes the
newest ``max_points`` readings, so memory per sensor is set by the rule, not by the sampling
rate.  A batch is judged in rounds (each sensor's k-th reading in round k), a few numpy calls
per round.  Resolutions (README, "Rule language"):

- window: whole buckets, from ``window_s`` to ``window_s`` + one bucket back;
- drift: the window and the baseline in whole buckets (the edge between them rounded to one);
- rate: the start point is the newest first-or-last reading of a bucket at or before the span's
  start (else the oldest kept); regression over the span's buckets;
- spike: the median and MAD of at most ``max_points`` earlier readings within ``window_s``.
"""

from __future__ import annotations

import numpy as np

from monitor.model import ReadingBatch, Signal
from monitor.registry import Registry
from rules.spec import DriftRule, GradedRule, RateRule, SpikeRule, WindowRule
from rules.state import remap_rows
from rules.threshold import ThresholdEvaluator
from rules.windows import BucketRing, rounds

DerivedRule = RateRule | WindowRule | SpikeRule | DriftRule


def robust_z(values: np.ndarray, previous: np.ndarray, min_scale: float) -> np.ndarray:
    """Per row: |value - median| / max(1.4826 MAD, min_scale) of the row's non-NaN previous."""
    with np.errstate(all="ignore"):
        med = np.nanmedian(previous, axis=1)
        mad = np.nanmedian(np.abs(previous - med[:, None]), axis=1)
    return np.asarray(np.abs(values - med) / np.maximum(1.4826 * mad, min_scale))


def _ring(rule: DerivedRule) -> BucketRing | None:
    if isinstance(rule, WindowRule):
        how = {"sum": {"sum": "sum"}, "mean": {"sum": "sum", "count": "sum"}}
        fields = how.get(rule.agg, {rule.agg: rule.agg})
        return BucketRing(rule.window_s / rule.buckets, rule.buckets + 1, fields)
    if isinstance(rule, DriftRule):
        width = (rule.window_s + rule.baseline_s) / rule.buckets
        return BucketRing(width, rule.buckets + 1, {"sum": "sum", "count": "sum"})
    if isinstance(rule, RateRule):
        fields = {"t_last": "last", "v_last": "last", "t_first": "first", "v_first": "first"}
        if rule.method == "regression":
            fields.update(n="sum", su="sum", sv="sum", suu="sum", suv="sum")
        return BucketRing(rule.span_s / rule.buckets, rule.buckets + 2, fields)
    return None


class DerivedEvaluator(ThresholdEvaluator):
    rule: DerivedRule

    def __init__(self, rule: DerivedRule, registry: Registry) -> None:
        self.seen = np.full(registry.capacity, -np.inf)
        self.ring = _ring(rule)
        points = rule.max_points if isinstance(rule, SpikeRule) else 0
        self.recent_ts = np.full((0, points), np.nan)
        self.recent_value = np.full((0, points), np.nan)
        super().__init__(rule, registry)

    @property
    def horizon(self) -> float:
        rule = self.rule
        if isinstance(rule, DriftRule):
            return rule.window_s + rule.baseline_s
        return rule.span_s if isinstance(rule, RateRule) else rule.window_s

    def configure(self, rule: GradedRule, registry: Registry, now: float | None = None) -> None:
        assert isinstance(rule, RateRule | WindowRule | SpikeRule | DriftRule)
        rows = self.active.shape[0] if hasattr(self, "active") else 0
        fresh = _ring(rule)
        if fresh is None or self.ring is None or not fresh.same_shape(self.ring):
            if fresh is not None:  # another resolution: the window fills again
                fresh.remap(np.full(rows, -1, np.int64))
            self.ring = fresh
        points = rule.max_points if isinstance(rule, SpikeRule) else 0
        if self.recent_ts.shape != (rows, points):
            self.recent_ts = np.full((rows, points), np.nan)
            self.recent_value = np.full((rows, points), np.nan)
        super().configure(rule, registry)
        if registry.capacity > self.seen.shape[0]:
            seen = np.full(registry.capacity, -np.inf)
            seen[: self.seen.shape[0]] = self.seen
            self.seen = seen

    def _remap_rows(self, mapping: np.ndarray) -> None:
        super()._remap_rows(mapping)
        if self.ring is not None:
            self.ring.remap(mapping)
        self.recent_ts = remap_rows(self.recent_ts, mapping, np.nan)
        self.recent_value = remap_rows(self.recent_value, mapping, np.nan)

    def derive(self, batch: ReadingBatch) -> ReadingBatch:
        """Derived value for each applicable reading (NaN where it cannot be judged yet)."""
        sub = batch.take(self.applies[batch.sensor])
        out = np.full(len(sub), np.nan)
        keys = sub.sensor.astype(np.int64)
        fresh = np.flatnonzero(sub.ts > self.seen[keys])  # older or duplicate: judged already
        rows = self.row[keys].astype(np.int64)
        for part in rounds(rows[fresh], sub.ts[fresh]):
            at = fresh[part]
            out[at] = self._round(rows[at], sub.ts[at], sub.value[at])
        if fresh.shape[0]:
            np.maximum.at(self.seen, keys[fresh], sub.ts[fresh])
        keep = ~np.isnan(out)
        derived = sub.take(keep)
        derived.value = out[keep]
        return derived

    def _round(self, rows: np.ndarray, ts: np.ndarray, value: np.ndarray) -> np.ndarray:
        """One round: each row's next reading, in; its derived value, out."""
        rule = self.rule
        if isinstance(rule, SpikeRule):
            return self._spike(rule, rows, ts, value)
        ring = self.ring
        assert ring is not None
        b = ring.bucket_of(ts)
        if isinstance(rule, RateRule):
            return self._rate(rule, ring, rows, ts, value, b)
        ring.add(rows, ts, {"sum": value, "count": np.ones_like(value), "max": value, "min": value})
        if isinstance(rule, WindowRule):
            inside = ring.within(rows, b - rule.buckets, b)
            if rule.agg == "sum":
                return ring.total(rows, inside, "sum")
            if rule.agg == "mean":
                mean: np.ndarray = ring.total(rows, inside, "sum") / ring.total(
                    rows, inside, "count"
                )
                return mean
            return ring.extreme(rows, inside, rule.agg)
        span = rule.window_s + rule.baseline_s
        recent_n = max(1, min(rule.buckets - 1, round(rule.buckets * rule.window_s / span)))
        recent = ring.within(rows, b - recent_n + 1, b)
        base = ring.within(rows, b - rule.buckets, b - recent_n)
        n_recent, n_base = ring.total(rows, recent, "count"), ring.total(rows, base, "count")
        with np.errstate(all="ignore"):
            shift = (
                ring.total(rows, recent, "sum") / n_recent - ring.total(rows, base, "sum") / n_base
            )
        shift = np.abs(shift) if rule.absolute else shift
        enough = (n_recent >= rule.min_points) & (n_base >= rule.min_points)
        return np.where(enough, shift, np.nan)

    def _spike(
        self, rule: SpikeRule, rows: np.ndarray, ts: np.ndarray, value: np.ndarray
    ) -> np.ndarray:
        kept_ts, kept = self.recent_ts[rows], self.recent_value[rows]
        previous = np.where(kept_ts > (ts - rule.window_s)[:, None], kept, np.nan)
        enough = (~np.isnan(previous)).sum(axis=1) >= rule.min_points
        z = np.full(rows.shape[0], np.nan)
        if enough.any():
            z[enough] = robust_z(value[enough], previous[enough], rule.min_scale)
        oldest = np.argmin(np.nan_to_num(kept_ts, nan=-np.inf), axis=1)  # replace the oldest
        self.recent_ts[rows, oldest] = ts
        self.recent_value[rows, oldest] = value
        return z

    def _rate(
        self,
        rule: RateRule,
        ring: BucketRing,
        rows: np.ndarray,
        ts: np.ndarray,
        value: np.ndarray,
        b: np.ndarray,
    ) -> np.ndarray:
        u = ts - b * ring.width  # time within the bucket, for regression sums
        ring.add(
            rows,
            ts,
            {"t_last": ts, "v_last": value, "t_first": ts, "v_first": value,
             "n": np.ones_like(ts), "su": u, "sv": value, "suu": u * u, "suv": u * value},
        )  # fmt: skip
        kept = ring.within(rows, b - ring.n + 1, b)
        cut = ts - rule.span_s
        t_last, v_last = ring.data["t_last"][rows], ring.data["v_last"][rows]
        t_first, v_first = ring.data["t_first"][rows], ring.data["v_first"][rows]
        with np.errstate(invalid="ignore"):
            t_both = np.concatenate([t_last, t_first], axis=1)
            v_both = np.concatenate([v_last, v_first], axis=1)
            ok = np.concatenate([kept, kept], axis=1)
            before = ok & (t_both <= cut[:, None])
            newest = np.argmax(np.where(before, t_both, -np.inf), axis=1)
            oldest = np.argmin(np.where(ok, t_both, np.inf), axis=1)
        pick = np.where(before.any(axis=1), newest, oldest)
        i = np.arange(rows.shape[0])
        t0, v0 = t_both[i, pick], v_both[i, pick]
        judged = (t0 < ts) & (ts - t0 >= rule.min_coverage * rule.span_s)
        with np.errstate(all="ignore"):
            rate = (value - v0) / (ts - t0)
            if rule.method == "regression":
                span = ring.within(rows, ring.bucket_of(cut), b)
                slope, points = self._slope(ring, rows, span, ts)
                rate = np.where(points >= 3, slope, rate)
        rate = rate * rule.per_s
        rate = np.abs(rate) if rule.absolute else rate
        return np.where(judged, rate, np.nan)

    @staticmethod
    def _slope(
        ring: BucketRing, rows: np.ndarray, mask: np.ndarray, ts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Least-squares slope over the masked buckets, from per-bucket sums of the time within
        the bucket (so no large times are squared)."""
        d = np.where(mask, ring.bucket[rows] * ring.width - ts[:, None], 0.0)
        data = {k: np.where(mask, ring.data[k][rows], 0.0) for k in ("n", "su", "sv", "suu", "suv")}
        n = data["n"].sum(axis=1)
        sx = (data["su"] + data["n"] * d).sum(axis=1)
        sv = data["sv"].sum(axis=1)
        sxx = (data["suu"] + 2 * d * data["su"] + data["n"] * d * d).sum(axis=1)
        sxv = (data["suv"] + d * data["sv"]).sum(axis=1)
        with np.errstate(all="ignore"):
            denom = n * sxx - sx * sx
            slope = np.where(denom > 0, (n * sxv - sx * sv) / denom, 0.0)
        return slope, n

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
        ok, rows = self._rows(keys)
        if self.ring is not None:
            state.update(self.ring.export(ok, rows, "ring_"))
        if self.recent_ts.shape[1]:
            for name in ("recent_ts", "recent_value"):
                arr = np.full((keys.shape[0], self.recent_ts.shape[1]), np.nan)
                arr[ok] = getattr(self, name)[rows[ok]]
                state[name] = arr
        return state

    def import_state(self, keys: np.ndarray, state: dict[str, np.ndarray]) -> None:
        super().import_state(keys, state)
        ok, rows = self._rows(keys)
        if self.ring is not None:
            self.ring.load(ok, rows, state, "ring_")
        for name in ("recent_ts", "recent_value"):
            saved = state.get(name)
            if saved is not None and saved.shape == (keys.shape[0], self.recent_ts.shape[1]):
                getattr(self, name)[rows[ok]] = saved[ok]

    def restore(self, key: int, level: int, last_ts: float | None = None) -> None:
        super().restore(key, level, last_ts)
        if last_ts is not None and key < self.seen.shape[0]:
            self.seen[key] = max(self.seen[key], last_ts)

    def reset(self, keys: np.ndarray, now: float) -> None:
        super().reset(keys, now)
        self.seen[keys] = -np.inf
        ok, rows = self._rows(keys)
        if self.ring is not None:
            self.ring.clear(rows[ok])
        self.recent_ts[rows[ok]] = np.nan
        self.recent_value[rows[ok]] = np.nan
