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
from rules.state import SEEN, Column, SensorTable, column
from rules.threshold import ThresholdEvaluator
from rules.windows import BucketRing, rounds

SHORT, LONG = 12, 24  # buckets of the variation and the correlation windows


def _short(rule: LeakRule, table: SensorTable) -> BucketRing:
    fields = {"n": "sum", "s": "sum", "ss": "sum"}
    return BucketRing(rule.window_s / SHORT, SHORT + 1, fields, table, "short_")


def _long(rule: LeakRule, table: SensorTable, prefix: str) -> BucketRing:
    return BucketRing(rule.corr_window_s / LONG, LONG + 1, {"n": "sum", "s": "sum"}, table, prefix)


class LeakEvaluator(ThresholdEvaluator):
    """Wells are the rows of ``table`` (with columns ``seen``, ``judged``, ``leaky`` and the
    two rings); the site temperature sensors the rows of ``temps``."""

    rule: LeakRule
    seen = column()
    judged = column()
    leaky = column()

    def __init__(self, rule: LeakRule, registry: Registry) -> None:
        self.temps = SensorTable({"seen": SEEN})
        super().__init__(rule, registry)

    def configure(self, rule: GradedRule, registry: Registry, now: float | None = None) -> None:
        assert isinstance(rule, LeakRule)
        self.short, self.long = _short(rule, self.table), _long(rule, self.table, "long_")
        self.temp_ring = _long(rule, self.temps, "temp_")
        judged, leaky = Column(0, np.int8), Column(False, bool)
        self.table.define({"seen": SEEN, "judged": judged, "leaky": leaky})
        super().configure(rule, registry)
        cap = registry.capacity
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
        self.temps.assign(np.flatnonzero(self.temperature), cap)

    def _add_wells(self, rows: np.ndarray, ts: np.ndarray, value: np.ndarray) -> None:
        one = np.ones_like(value)
        self.short.add(rows, ts, {"n": one, "s": value, "ss": value * value})
        self.long.add(rows, ts, {"n": one, "s": value})

    def _add_temps(self, keys: np.ndarray, ts: np.ndarray, value: np.ndarray) -> None:
        rows = self.temps.row[keys]
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
        w_idx = np.flatnonzero(self.applies[keys])
        w_idx = w_idx[self.table.fresh(self.row[keys[w_idx]], batch.ts[w_idx])]
        t_idx = np.flatnonzero(self.temperature[keys])
        t_rows = self.temps.row[keys[t_idx]]
        t_fresh = self.temps.fresh(t_rows, batch.ts[t_idx])
        t_idx = t_idx[t_fresh]
        self.table.judged(self.row[keys[w_idx]], batch.ts[w_idx])
        self.temps.judged(t_rows[t_fresh], batch.ts[t_idx])
        if not w_idx.shape[0]:
            self._add_temps(keys[t_idx], batch.ts[t_idx], batch.value[t_idx])
            return []
        wk, wts, wv = keys[w_idx], batch.ts[w_idx], batch.value[w_idx]
        rows = self.row[wk].astype(np.int64)
        raws = self.raw_levels(wk, wv)
        busy = (raws != 0) | (self.active[rows] != 0) | (self.pending[rows] != 0)
        busy |= self.judged[rows] != 0
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
            self.leaky[r] = judgement == "leak"
            if level != self.judged[r]:
                self.judged[r] = level
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
            registry.by_key[k].id
            for k in self.wells_of.get(site, ())
            if k != key and self.leaky[self.row[k]]
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
        temps = [self.temps.row_of(k) for k in self.temps_of.get(site, ())]
        if not temps:
            return None
        ring, b = self.long, int(self.long.bucket_of(np.array([ts]))[0])
        ids = ring.bucket[row]
        ok = (ids >= b - LONG) & (ids <= b) & (ring["n"][row] > 0)
        if ring["n"][row][ok].sum() < self.rule.min_points:
            return None
        t_ids = self.temp_ring.bucket[temps[0]]
        t_n, t_s = self.temp_ring["n"][temps[0]], self.temp_ring["s"][temps[0]]
        methane, temperature = [], []
        for slot in np.flatnonzero(ok).tolist():
            match = np.flatnonzero((t_ids == ids[slot]) & (t_n > 0))
            if match.shape[0]:
                m = int(match[0])
                methane.append(ring["s"][row, slot] / ring["n"][row, slot])
                temperature.append(t_s[m] / t_n[m])
        if len(methane) < 3:
            return None
        x, y = np.array(methane), np.array(temperature)
        if x.std() == 0 or y.std() == 0:
            return None
        return float(np.corrcoef(x, y)[0, 1])

    def export_state(self, keys: np.ndarray) -> dict[str, np.ndarray]:
        return {**self.table.export(keys), **self.temps.export(keys, "temps.")}

    def import_state(self, keys: np.ndarray, state: dict[str, np.ndarray]) -> None:
        self.table.load(state)
        self.temps.load(state, "temps.")

    def reset(self, keys: np.ndarray, now: float) -> None:
        super().reset(keys, now)
        ok, rows = self.temps.rows(keys)
        self.temps.reset(rows[ok])

    def restore(self, key: int, level: int, last_ts: float | None = None) -> None:
        super().restore(key, level, last_ts)
        r = self._row(key)
        if r >= 0:
            self.judged[r] = level
            if last_ts is not None:
                self.seen[r] = max(self.seen[r], last_ts)
