"""Gas leak or biogas: a graded methane rule whose level is judged from the well's recent
shape, its agreement with temperature, and the other wells of its zone.

The raw level (set-points, hysteresis, delays) is kept by the threshold state machine; the
judged level is what the alert carries, and it changes when either the raw level or the
judgement changes.

History is bounded (``rules.windows``): per well, the variation window in 12 buckets (count,
sum, sum of squares) and the correlation window in 24 (count, sum); per temperature sensor the
correlation window too.  The variation is exact to the bucket (from ``window_s`` up to one
bucket more); the correlation is over the bucket means (hourly for a day), where both the well
and the site's temperature have readings.  Calm wells (normal, nothing pending) only update
their windows, a few numpy calls per batch; the others are judged reading by reading, with the
temperature windows brought up to each reading's time.
"""

from __future__ import annotations

import numpy as np

from monitor.model import ReadingBatch, Signal
from monitor.registry import Registry
from rules.spec import GradedRule, LeakRule
from rules.state import repeats
from rules.threshold import ThresholdEvaluator
from rules.windows import BucketRing, rounds

SHORT, LONG = 12, 24  # buckets of the variation and the correlation windows


def _short(rule: LeakRule) -> BucketRing:
    return BucketRing(rule.window_s / SHORT, SHORT + 1, {"n": "sum", "s": "sum", "ss": "sum"})


def _long(rule: LeakRule) -> BucketRing:
    return BucketRing(rule.corr_window_s / LONG, LONG + 1, {"n": "sum", "s": "sum"})


class LeakEvaluator(ThresholdEvaluator):
    rule: LeakRule

    def __init__(self, rule: LeakRule, registry: Registry) -> None:
        self.judged = np.zeros(registry.capacity, np.int8)
        self.temperature: np.ndarray = np.zeros(registry.capacity, bool)
        self.leaky = np.zeros(registry.capacity, bool)
        self.seen = np.full(registry.capacity, -np.inf)
        self.short, self.long = _short(rule), _long(rule)
        self.temp_row = np.full(0, -1, np.int64)
        self.temp_ring = _long(rule)
        super().__init__(rule, registry)

    def configure(self, rule: GradedRule, registry: Registry, now: float | None = None) -> None:
        assert isinstance(rule, LeakRule)
        rows = self.active.shape[0] if hasattr(self, "active") else 0
        if not (_short(rule).same_shape(self.short) and _long(rule).same_shape(self.long)):
            self.short, self.long = _short(rule), _long(rule)  # another window: refill
            self.short.remap(np.full(rows, -1, np.int64))
            self.long.remap(np.full(rows, -1, np.int64))
            self.temp_ring = _long(rule)
            self.temp_row = np.full(0, -1, np.int64)
        super().configure(rule, registry)
        cap = registry.capacity
        for name, fill, dtype in (("seen", -np.inf, np.float64), ("judged", 0, np.int8),
                                  ("leaky", False, bool)):  # fmt: skip
            old = getattr(self, name)
            if cap > old.shape[0]:
                grown = np.full(cap, fill, dtype)
                grown[: old.shape[0]] = old
                setattr(self, name, grown)
        self.temperature = np.zeros(cap, bool)
        # per site: its wells and its temperature sensors (judging must not scan every sensor)
        self.wells_of: dict[str, list[int]] = {}
        self.temps_of: dict[str, list[int]] = {}
        for sensor in registry.sensors.values():
            key = registry.keys[sensor.id]
            if sensor.kind == rule.temperature_kind:
                self.temperature[key] = True
                self.temps_of.setdefault(sensor.site, []).append(key)
            elif key < self.applies.shape[0] and self.applies[key]:
                self.wells_of.setdefault(sensor.site, []).append(key)
        temps = np.flatnonzero(self.temperature)
        old = np.full(cap, -1, np.int64)
        old[: min(cap, self.temp_row.shape[0])] = self.temp_row[:cap]
        self.temp_ring.remap(old[temps])
        self.temp_row = np.full(cap, -1, np.int64)
        self.temp_row[temps] = np.arange(temps.shape[0])

    def _remap_rows(self, mapping: np.ndarray) -> None:
        super()._remap_rows(mapping)
        self.short.remap(mapping)
        self.long.remap(mapping)

    STATE: tuple[str, ...] = (*ThresholdEvaluator.STATE, "seen", "judged", "leaky")

    def _add_wells(self, rows: np.ndarray, ts: np.ndarray, value: np.ndarray) -> None:
        one = np.ones_like(value)
        self.short.add(rows, ts, {"n": one, "s": value, "ss": value * value})
        self.long.add(rows, ts, {"n": one, "s": value})

    def _add_temps(self, keys: np.ndarray, ts: np.ndarray, value: np.ndarray) -> None:
        rows = self.temp_row[keys]
        for part in rounds(rows, ts):
            self.temp_ring.add(
                rows[part], ts[part], {"n": np.ones(part.shape[0]), "s": value[part]}
            )

    def evaluate(
        self, batch: ReadingBatch, registry: Registry, agree: np.ndarray | None = None
    ) -> list[Signal]:
        if not len(batch):
            return []
        keys = batch.sensor.astype(np.int64)
        # older than judged, or a resend at the same time within the batch: judged already
        fresh = (batch.ts > self.seen[keys]) & ~repeats(keys, batch.ts)
        wells = fresh & self.applies[keys]
        temps = fresh & self.temperature[keys]
        t_idx = np.flatnonzero(temps)
        w_idx = np.flatnonzero(wells)
        if fresh.any():
            np.maximum.at(self.seen, keys[fresh], batch.ts[fresh])
        if not w_idx.shape[0]:
            self._add_temps(keys[t_idx], batch.ts[t_idx], batch.value[t_idx])
            return []
        wk, wts, wv = keys[w_idx], batch.ts[w_idx], batch.value[w_idx]
        rows = self.row[wk].astype(np.int64)
        raws = self.raw_levels(wk, wv)
        busy = (raws != 0) | (self.active[rows] != 0) | (self.pending[rows] != 0)
        busy |= self.judged[wk] != 0
        hot = np.isin(wk, np.unique(wk[busy])) if busy.any() else busy
        calm = np.flatnonzero(~hot)
        for part in rounds(rows[calm], wts[calm]):  # their windows only
            at = calm[part]
            self._add_wells(rows[at], wts[at], wv[at])
        if calm.shape[0]:
            np.maximum.at(self.last_ts, rows[calm], wts[calm])
        signals: list[Signal] = []
        order = np.argsort(wts, kind="stable")
        t_order = t_idx[np.argsort(batch.ts[t_idx], kind="stable")]
        done_temps = 0
        for j in order[hot[order]].tolist():
            key, ts, value, raw, r = (
                int(wk[j]),
                float(wts[j]),
                float(wv[j]),
                int(raws[j]),
                int(rows[j]),
            )
            upto = done_temps + int(np.searchsorted(batch.ts[t_order[done_temps:]], ts, "right"))
            if upto > done_temps:  # the site's temperature up to this reading
                chunk = t_order[done_temps:upto]
                self._add_temps(keys[chunk], batch.ts[chunk], batch.value[chunk])
                done_temps = upto
            self._add_wells(np.array([r]), np.array([ts]), np.array([value]))
            self._step(key, ts, value, raw, float(batch.received[w_idx[j]]), registry)
            level, judgement, reasons = self.judge(key, int(self.active[r]), ts, registry)
            self.leaky[key] = judgement == "leak"
            if level != self.judged[key]:
                self.judged[key] = level
                evidence = {
                    "type": "leak",
                    "raw_level": int(self.active[r]),
                    "judgement": judgement,
                    "why": reasons,
                    "value": value,
                }
                received = float(batch.received[w_idx[j]])
                signals.append(self.signal(key, level, ts, received, value, evidence, registry))
        rest = t_order[done_temps:]
        self._add_temps(keys[rest], batch.ts[rest], batch.value[rest])
        return signals

    def judge(
        self, key: int, raw: int, ts: float, registry: Registry
    ) -> tuple[int, str, list[str]]:
        if raw == 0:
            return 0, "none", []
        rule = self.rule
        row = np.array([int(self.row[key])])
        b = self.short.bucket_of(np.array([ts]))
        inside = self.short.within(row, b - SHORT, b)
        n = float(self.short.total(row, inside, "n")[0])
        if n < rule.min_points:
            return raw, "undetermined", [f"only {n:.0f} readings in the window"]
        mean = float(self.short.total(row, inside, "s")[0]) / n
        var = max(float(self.short.total(row, inside, "ss")[0]) / n - mean * mean, 0.0)
        cv = float(np.sqrt(var) / mean) if mean > 0 else 0.0
        site = registry.by_key[key].site
        neighbours = [
            registry.by_key[k].id for k in self.wells_of.get(site, ()) if k != key and self.leaky[k]
        ]
        corr = self._temperature_corr(int(row[0]), site, ts)
        reasons = [f"variation cv={cv:.2f}"]
        if corr is not None:
            reasons.append(f"correlation with temperature r={corr:.2f}")
        if neighbours:
            reasons.append(f"nearby wells judged leaking: {', '.join(sorted(neighbours))}")
        follows = corr is None or corr >= rule.biogas_corr
        if cv < rule.biogas_cv and follows:  # the shape explains it, neighbours or not
            capped = max(raw, rule.biogas_max_level)
            note = " and following temperature" if corr is not None else ""
            return capped, "biogas", [f"low and stable{note}: held at level {capped}", *reasons]
        if cv >= rule.leak_cv or neighbours:
            why = "strongly fluctuating" if cv >= rule.leak_cv else "corroborated by nearby wells"
            return max(1, raw - 1), "leak", [f"{why}: raised one level", *reasons]
        return raw, "undetermined", reasons

    def _temperature_corr(self, row: int, site: str, ts: float) -> float | None:
        """Pearson r of the well's and the site's temperature bucket means over the
        correlation window (buckets where both have readings, at least three)."""
        temps = [int(self.temp_row[k]) for k in self.temps_of.get(site, ())]
        if not temps:
            return None
        ring, b = self.long, int(self.long.bucket_of(np.array([ts]))[0])
        ids = ring.bucket[row]
        ok = (ids >= b - LONG) & (ids <= b) & (ring.data["n"][row] > 0)
        if ring.data["n"][row][ok].sum() < self.rule.min_points:
            return None
        t_ids = self.temp_ring.bucket[temps[0]]
        t_n, t_s = self.temp_ring.data["n"][temps[0]], self.temp_ring.data["s"][temps[0]]
        methane, temperature = [], []
        for slot in np.flatnonzero(ok).tolist():
            match = np.flatnonzero((t_ids == ids[slot]) & (t_n > 0))
            if match.shape[0]:
                m = int(match[0])
                methane.append(ring.data["s"][row, slot] / ring.data["n"][row, slot])
                temperature.append(t_s[m] / t_n[m])
        if len(methane) < 3:
            return None
        x, y = np.array(methane), np.array(temperature)
        if x.std() == 0 or y.std() == 0:
            return None
        return float(np.corrcoef(x, y)[0, 1])

    def export_state(self, keys: np.ndarray) -> dict[str, np.ndarray]:
        state = super().export_state(keys)
        ok, rows = self._rows(keys)
        state.update(self.short.export(ok, rows, "short_"))
        state.update(self.long.export(ok, rows, "long_"))
        trows = np.full(keys.shape[0], -1, np.int64)
        known = keys < self.temp_row.shape[0]
        trows[known] = self.temp_row[keys[known]]
        state.update(self.temp_ring.export(trows >= 0, trows, "temp_"))
        return state

    def import_state(self, keys: np.ndarray, state: dict[str, np.ndarray]) -> None:
        super().import_state(keys, state)
        ok, rows = self._rows(keys)
        self.short.load(ok, rows, state, "short_")
        self.long.load(ok, rows, state, "long_")
        trows = np.full(keys.shape[0], -1, np.int64)
        known = keys < self.temp_row.shape[0]
        trows[known] = self.temp_row[keys[known]]
        self.temp_ring.load(trows >= 0, trows, state, "temp_")

    def reset(self, keys: np.ndarray, now: float) -> None:
        super().reset(keys, now)
        self.judged[keys], self.leaky[keys] = 0, False
        self.seen[keys] = -np.inf
        ok, rows = self._rows(keys)
        self.short.clear(rows[ok])
        self.long.clear(rows[ok])
        trows = self.temp_row[keys[keys < self.temp_row.shape[0]]]
        self.temp_ring.clear(trows[trows >= 0])

    def restore(self, key: int, level: int, last_ts: float | None = None) -> None:
        super().restore(key, level, last_ts)
        if last_ts is not None and key < self.seen.shape[0]:
            self.seen[key] = max(self.seen[key], last_ts)
        if key < self.judged.shape[0]:
            self.judged[key] = level
