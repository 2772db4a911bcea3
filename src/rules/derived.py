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
  start (else the oldest kept); regression over the span's buckets; Theil-Sen over the span's
  bucket means;
- spike: the median and MAD of at most ``max_points`` earlier readings within ``window_s``;
  with ``returns``, a reading is a spike only when the readings before and after it are
  within half the mildest level, judged at the reading after it; with ``below``, judged only
  while the median of the earlier readings is below it.
"""

from __future__ import annotations

import numpy as np

from monitor.model import ReadingBatch, Signal
from monitor.registry import Registry
from rules import reach
from rules.spec import DriftRule, GradedRule, RateRule, SpikeRule, WindowRule
from rules.state import SEEN, Column, SensorTable, column
from rules.threshold import ThresholdEvaluator, plausible
from rules.windows import BucketRing, rounds

DerivedRule = RateRule | WindowRule | SpikeRule | DriftRule


def nanmedian_rows(x: np.ndarray) -> np.ndarray:
    """``np.nanmedian(x, axis=1)`` by one sort (NaN sorts last) and the middle one or two
    valid values by index: numpy's own goes through masked arrays for short rows."""
    s = np.sort(x, axis=1)
    n = (~np.isnan(x)).sum(axis=1)
    i = np.arange(x.shape[0])
    low = s[i, np.maximum((n - 1) // 2, 0)]
    high = s[i, np.minimum(n // 2, x.shape[1] - 1)]
    return np.where(n > 0, (low + high) / 2, np.nan)


def robust_z(
    values: np.ndarray, previous: np.ndarray, min_scale: float, med: np.ndarray | None = None
) -> np.ndarray:
    """Per row: |value - median| / max(1.4826 MAD, min_scale) of the row's non-NaN previous
    (``med``: their median, when known)."""
    med = nanmedian_rows(previous) if med is None else med
    with np.errstate(all="ignore"):
        mad = nanmedian_rows(np.abs(previous - med[:, None]))
        return np.asarray(np.abs(values - med) / np.maximum(1.4826 * mad, min_scale))


def _ring(rule: DerivedRule, table: SensorTable) -> BucketRing | None:
    if isinstance(rule, WindowRule):
        how = {
            "mean": {"sum": "sum", "count": "sum"},
            "wander": {"path": "sum", "net": "sum", "count": "sum"},
        }
        fields = how.get(rule.agg, {rule.agg: rule.agg})
        if rule.min_points > 1:
            fields["count"] = "sum"
        width, n = rule.window_s / rule.buckets, rule.buckets + 1
        return BucketRing(width, n, fields, table, "ring_", {"window": (rule.buckets, 0)})
    if isinstance(rule, DriftRule):
        width = (rule.window_s + rule.baseline_s) / rule.buckets
        fields = {"sum": "sum", "count": "sum"} | ({} if rule.below is None else {"max": "max"})
        recent = _recent_buckets(rule)
        spans = {"recent": (recent - 1, 0), "base": (rule.buckets, recent)}
        return BucketRing(width, rule.buckets + 1, fields, table, "ring_", spans)
    if isinstance(rule, RateRule):
        fields = {"t_last": "last", "v_last": "last", "t_first": "first", "v_first": "first"}
        if rule.method == "regression":
            fields.update(n="sum", su="sum", sv="sum", suu="sum", suv="sum")
        elif rule.method == "theil_sen":
            fields.update(n="sum", su="sum", sv="sum")
        if rule.held_at is not None:
            fields.update(lo="min", hi="max")
        return BucketRing(rule.span_s / rule.buckets, rule.buckets + 2, fields, table, "ring_")
    table.drop("ring_")
    return None


def _recent_buckets(rule: DriftRule) -> int:
    """How many of a drift rule's buckets are its recent window (the rest the baseline)."""
    span = rule.window_s + rule.baseline_s
    return max(1, min(rule.buckets - 1, round(rule.buckets * rule.window_s / span)))


class DerivedEvaluator(ThresholdEvaluator):
    """Columns of its own: ``seen`` (the newest reading derived from), the ring's slots, and
    for spikes the newest ``max_points`` readings."""

    rule: DerivedRule
    seen = column()
    recent_ts = column()
    recent_value = column()
    previous = column()  # wander: the sensor's last reading

    @property
    def horizon(self) -> float:
        rule = self.rule
        if isinstance(rule, DriftRule):
            return rule.window_s + rule.baseline_s
        return rule.span_s if isinstance(rule, RateRule) else rule.window_s

    def configure(self, rule: GradedRule, registry: Registry, now: float | None = None) -> None:
        assert isinstance(rule, RateRule | WindowRule | SpikeRule | DriftRule)
        self.ring = _ring(rule, self.table)  # another resolution: the window fills again
        points = rule.max_points if isinstance(rule, SpikeRule) else 0
        recent = Column(np.nan, np.float64, (points,))
        self.table.define({"seen": SEEN, "recent_ts": recent, "recent_value": recent})
        if isinstance(rule, WindowRule) and rule.agg == "wander":
            self.table.define({"previous": Column(np.nan)})
        else:
            self.table.drop("previous")
        if isinstance(rule, SpikeRule) and rule.returns:  # the z of the last two readings
            self.table.define({"last_z": Column(np.nan), "before_z": Column(np.nan)})
        super().configure(rule, registry)

    def judged_values(self, values: np.ndarray) -> np.ndarray:
        """Derived values are all judged: ``derive`` left out the implausible readings."""
        return np.ones(values.shape[0], bool)

    def derive(self, batch: ReadingBatch) -> ReadingBatch:
        """Derived value for each applicable reading (NaN where it cannot be judged yet)."""
        sub = batch.take(self.applies[batch.sensor] & plausible(self.rule, batch.value))
        out = np.full(len(sub), np.nan)
        rows = self.row[sub.sensor]
        fresh = np.flatnonzero(sub.ts > self.seen[rows])  # older or duplicate: judged already
        judged = fresh  # out of reach too: a repeat of one changes nothing
        rule = self.rule
        if isinstance(rule, RateRule) and rule.max_rate is not None:
            got = (rows[fresh], sub.ts[fresh], sub.value[fresh])
            fresh = fresh[reach.within_reach(self.table, *got, rule.max_rate, rule.max_rate_slack)]
        for part in rounds(rows[fresh], sub.ts[fresh]):
            at = fresh[part]
            out[at] = self._round(rows[at], sub.ts[at], sub.value[at])
        self.table.judged(rows[judged], sub.ts[judged])
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
            return self._add_rate(rule, ring, rows, ts, value, b)
        if isinstance(rule, WindowRule) and rule.agg == "wander":
            return self._wander(rule, ring, rows, ts, value, b)
        ring.add(rows, ts, {"sum": value, "count": np.ones_like(value), "max": value, "min": value})
        if isinstance(rule, WindowRule):
            if rule.min_points > 1:
                few = ring.span(rows, b, "window", "count") < rule.min_points
                return np.where(few, np.nan, self._aggregate(rule, ring, rows, b))
            return self._aggregate(rule, ring, rows, b)
        return self._drift(rule, ring, rows, b)

    def _aggregate(
        self, rule: WindowRule, ring: BucketRing, rows: np.ndarray, b: np.ndarray
    ) -> np.ndarray:
        if rule.agg == "mean":
            with np.errstate(all="ignore"):
                mean: np.ndarray = ring.span(rows, b, "window", "sum") / ring.span(
                    rows, b, "window", "count"
                )
            return mean
        return ring.span(rows, b, "window", rule.agg)

    def _wander(
        self,
        rule: WindowRule,
        ring: BucketRing,
        rows: np.ndarray,
        ts: np.ndarray,
        value: np.ndarray,
        b: np.ndarray,
    ) -> np.ndarray:
        """Each reading's step from the sensor's previous one into its bucket; the path that
        adds up to no change within each bucket of the window, per step (bucket by bucket, so
        a real line that rises and falls within the window is no wander)."""
        step = value - self.previous[rows]
        self.previous[rows] = value
        first = np.isnan(step)
        step = np.where(first, 0.0, step)
        if rule.max_step is not None:
            step = np.clip(step, -rule.max_step, rule.max_step)
        ring.add(rows, ts, {"path": np.abs(step), "net": step, "count": (~first).astype(float)})
        inside = ring.within(rows, b - rule.buckets, b)
        n = ring.total(rows, inside, "count")
        idle = np.where(inside, ring["path"][rows] - np.abs(ring["net"][rows]), 0.0).sum(axis=1)
        with np.errstate(all="ignore"):
            wander: np.ndarray = idle / n
        return np.where(n >= rule.min_points, wander, np.nan)

    def _drift(
        self, rule: DriftRule, ring: BucketRing, rows: np.ndarray, b: np.ndarray
    ) -> np.ndarray:
        n_recent = ring.span(rows, b, "recent", "count")
        n_base = ring.span(rows, b, "base", "count")
        with np.errstate(all="ignore"):
            shift = (
                ring.span(rows, b, "recent", "sum") / n_recent
                - ring.span(rows, b, "base", "sum") / n_base
            )
        shift = np.abs(shift) if rule.absolute else shift
        enough = (n_recent >= rule.min_points) & (n_base >= rule.min_points)
        if rule.below is not None:
            enough &= ring.span(rows, b, "recent", "max") < rule.below
        return np.where(enough, shift, np.nan)

    def _spike(
        self, rule: SpikeRule, rows: np.ndarray, ts: np.ndarray, value: np.ndarray
    ) -> np.ndarray:
        kept_ts, kept = self.recent_ts[rows], self.recent_value[rows]
        previous = np.where(kept_ts > (ts - rule.window_s)[:, None], kept, np.nan)
        enough = (~np.isnan(previous)).sum(axis=1) >= rule.min_points
        z = np.full(rows.shape[0], np.nan)
        if enough.any():
            med = nanmedian_rows(previous[enough])
            z[enough] = robust_z(value[enough], previous[enough], rule.min_scale, med)
            if rule.below is not None:  # a recent level in the alarm range is not judged
                z[np.flatnonzero(enough)[med >= rule.below]] = np.nan
        oldest = np.argmin(np.nan_to_num(kept_ts, nan=-np.inf), axis=1)  # replace the oldest
        self.recent_ts[rows, oldest] = ts
        self.recent_value[rows, oldest] = value
        if not rule.returns:
            return z
        # The previous reading was a spike if it stood alone: the one before it and this one
        # are within half the mildest level.  Judged now, as this reading.
        last, before = self.table["last_z"], self.table["before_z"]
        spike, was = last[rows], before[rows]
        before[rows], last[rows] = spike, z
        calm = min(rule.levels.values()) / 2
        alone = (z < calm) & (was < calm)  # NaN (too few points): not judged
        return np.where(alone, spike, np.where(np.isnan(z), np.nan, 0.0))

    def _add_rate(
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
             "n": np.ones_like(ts), "su": u, "sv": value, "suu": u * u, "suv": u * value,
             "lo": value, "hi": value},
        )  # fmt: skip
        if rule.held_at is None:
            return self._rate(rule, ring, rows, ts, value, b)
        # held beyond it: the reading itself first of all, the windows only for those that are
        beyond = value >= rule.held_at if rule.direction == "high" else value <= rule.held_at
        sel = np.flatnonzero(beyond)
        out = np.full(rows.shape[0], np.nan)
        if sel.shape[0]:
            out[sel] = self._rate(rule, ring, rows[sel], ts[sel], value[sel], b[sel])
        return out

    def _rate(
        self,
        rule: RateRule,
        ring: BucketRing,
        rows: np.ndarray,
        ts: np.ndarray,
        value: np.ndarray,
        b: np.ndarray,
    ) -> np.ndarray:
        """The rate of each reading, added to the ring already."""
        kept = ring.within(rows, b - ring.n + 1, b)
        cut = ts - rule.span_s
        t_last, v_last = ring["t_last"][rows], ring["v_last"][rows]
        t_first, v_first = ring["t_first"][rows], ring["v_first"][rows]
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
        if rule.held_at is not None:  # every reading of the held buckets beyond it
            held_s = rule.span_s if rule.held_s is None else rule.held_s
            held = ring.within(rows, ring.bucket_of(ts - held_s), b)
            if rule.direction == "high":
                judged &= ring.extreme(rows, held, "lo") >= rule.held_at
            else:
                judged &= ring.extreme(rows, held, "hi") <= rule.held_at
        with np.errstate(all="ignore"):
            rate = (value - v0) / (ts - t0)
        if rule.method != "endpoints":  # fitted only where the rate is judged at all
            rate = np.full(rows.shape[0], np.nan)
            sel = np.flatnonzero(judged)
            if sel.size:
                span = ring.within(rows[sel], ring.bucket_of(cut[sel]), b[sel])
                fit = self._slope if rule.method == "regression" else self._median_slope
                slope, points = fit(ring, rows[sel], span, ts[sel])
                rate[sel] = np.where(points >= rule.min_points, slope, np.nan)
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
        data = {k: np.where(mask, ring[k][rows], 0.0) for k in ("n", "su", "sv", "suu", "suv")}
        n = data["n"].sum(axis=1)
        sx = (data["su"] + data["n"] * d).sum(axis=1)
        sv = data["sv"].sum(axis=1)
        sxx = (data["suu"] + 2 * d * data["su"] + data["n"] * d * d).sum(axis=1)
        sxv = (data["suv"] + d * data["sv"]).sum(axis=1)
        with np.errstate(all="ignore"):
            denom = n * sxx - sx * sx
            slope = np.where(denom > 0, (n * sxv - sx * sv) / denom, 0.0)
        return slope, (mask & (ring["n"][rows] > 0)).sum(axis=1)

    @staticmethod
    def _median_slope(
        ring: BucketRing, rows: np.ndarray, mask: np.ndarray, ts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Theil-Sen: the median of the slopes between every pair of the masked buckets' means
        (mean time, mean value), and the number of such buckets.  A few wild readings move
        only their own buckets' points, so they do not move the median."""
        n = np.where(mask, ring["n"][rows], 0.0)
        has = n > 0
        with np.errstate(all="ignore"):
            t = ring.bucket[rows] * ring.width - ts[:, None] + ring["su"][rows] / n
            v = ring["sv"][rows] / n
            i, j = np.triu_indices(n.shape[1], 1)
            pair = has[:, i] & has[:, j] & (t[:, j] != t[:, i])
            slopes = np.where(pair, (v[:, j] - v[:, i]) / (t[:, j] - t[:, i]), np.inf)
        slopes.sort(axis=1)  # the pairs that are not, as +inf, last
        k = pair.sum(axis=1)
        at = np.arange(len(rows))
        middle = 0.5 * (slopes[at, np.maximum(k - 1, 0) // 2] + slopes[at, k // 2])
        slope = np.where(k > 0, middle, 0.0)
        return slope, has.sum(axis=1)

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

    def restore(self, key: int, level: int, last_ts: float | None = None) -> None:
        super().restore(key, level, last_ts)
        r = self._row(key)
        if last_ts is not None and r >= 0:
            self.seen[r] = max(self.seen[r], last_ts)
