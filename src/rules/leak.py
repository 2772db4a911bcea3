"""Gas leak or biogas: a graded methane rule whose level is judged from the well's recent
shape, its agreement with temperature, and the other wells of its zone.

The raw level (set-points, hysteresis, delays) is kept by the threshold state machine; the
judged level is what the alert carries, and it changes when either the raw level or the
judgement changes.  Per-reading Python: methane wells report about once a minute.
"""

from __future__ import annotations

import numpy as np

from monitor.model import ReadingBatch, Signal
from monitor.registry import Registry
from rules.spec import GradedRule, LeakRule
from rules.threshold import ThresholdEvaluator

History = list[tuple[float, float]]


def drop_before(hist: History, cutoff: float) -> None:
    """Drop the readings at or before ``cutoff`` (the newest one always stays)."""
    i = 0
    while i < len(hist) - 1 and hist[i][0] <= cutoff:
        i += 1
    if i:
        del hist[:i]


class LeakEvaluator(ThresholdEvaluator):
    rule: LeakRule

    def __init__(self, rule: LeakRule, registry: Registry) -> None:
        self.judged = np.zeros(registry.capacity, np.int8)
        self.temperature: np.ndarray = np.zeros(registry.capacity, bool)
        self.leaky = np.zeros(registry.capacity, bool)
        self.history: dict[int, History] = {}
        self.seen = np.full(registry.capacity, -np.inf)
        super().__init__(rule, registry)

    @property
    def horizon(self) -> float:
        return max(self.rule.window_s, self.rule.corr_window_s)

    def configure(self, rule: GradedRule, registry: Registry) -> None:
        super().configure(rule, registry)
        if registry.capacity > self.seen.shape[0]:
            seen = np.full(registry.capacity, -np.inf)
            seen[: self.seen.shape[0]] = self.seen
            self.seen = seen
        if registry.capacity > self.judged.shape[0]:
            judged = np.zeros(registry.capacity, np.int8)
            judged[: self.judged.shape[0]] = self.judged
            leaky = np.zeros(registry.capacity, bool)
            leaky[: self.leaky.shape[0]] = self.leaky
            self.judged, self.leaky = judged, leaky
        assert isinstance(rule, LeakRule)
        self.temperature = np.zeros(registry.capacity, bool)
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

    STATE: tuple[str, ...] = (*ThresholdEvaluator.STATE, "seen", "judged", "leaky")

    def _remember(self, key: int, ts: float, value: float) -> bool:
        if ts <= self.seen[key]:
            return False
        self.seen[key] = ts
        hist = self.history.get(key)
        if hist is None:
            hist = self.history[key] = []
        hist.append((ts, value))
        drop_before(hist, ts - self.horizon)
        return True

    def evaluate(
        self, batch: ReadingBatch, registry: Registry, agree: np.ndarray | None = None
    ) -> list[Signal]:
        if not len(batch):
            return []
        wells = self.applies[batch.sensor]
        temps = self.temperature[batch.sensor]
        if not wells.any():
            for i in np.flatnonzero(temps):
                self._remember(int(batch.sensor[i]), float(batch.ts[i]), float(batch.value[i]))
            return []
        signals = []
        idx = np.flatnonzero(wells | temps)
        keys: list[int] = batch.sensor[idx].tolist()
        tss = batch.ts[idx].tolist()
        values, received = batch.value[idx].tolist(), batch.received[idx].tolist()
        is_temp = temps[idx].tolist()
        raws = self.raw_levels(batch.sensor[idx], batch.value[idx]).tolist()
        active, pending, judged = self.active, self.pending, self.judged
        for j, key in enumerate(keys):
            ts, value = tss[j], values[j]
            if not self._remember(key, ts, value) or is_temp[j]:
                continue
            raw, r = raws[j], self._row(key)
            if raw == 0 and active[r] == 0 and pending[r] == 0 and judged[key] == 0:
                continue  # calm: only its history matters, and it is kept
            self.last_ts[r] = np.nextafter(ts, -np.inf)  # _remember dropped stale ones
            self._step(key, ts, value, raw, received[j], registry)
            level, judgement, reasons = self.judge(key, int(active[r]), registry)
            self.leaky[key] = judgement == "leak"
            if level != judged[key]:
                self.judged[key] = level
                evidence = {
                    "type": "leak",
                    "raw_level": int(self.active[r]),
                    "judgement": judgement,
                    "why": reasons,
                    "value": value,
                }
                signals.append(self.signal(key, level, ts, received[j], value, evidence, registry))
        return signals

    def judge(self, key: int, raw: int, registry: Registry) -> tuple[int, str, list[str]]:
        if raw == 0:
            return 0, "none", []
        rule = self.rule
        hist = self.history.get(key, ())
        latest = hist[-1][0] if hist else 0.0
        values = np.array([v for t, v in hist if t > latest - rule.window_s])
        if values.shape[0] < rule.min_points:
            return raw, "undetermined", [f"only {values.shape[0]} readings in the window"]
        mean = float(values.mean())
        cv = float(values.std() / mean) if mean > 0 else 0.0
        site = registry.by_key[key].site
        neighbours = [
            registry.by_key[k].id for k in self.wells_of.get(site, ()) if k != key and self.leaky[k]
        ]
        corr = self._temperature_corr(key, site, registry)
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

    def _temperature_corr(self, key: int, site: str, registry: Registry) -> float | None:
        hist = self.history.get(key, ())
        series = [
            self.history[k]
            for k in self.temps_of.get(site, ())
            if len(self.history.get(k, ())) >= 2
        ]
        if not series or len(hist) < self.rule.min_points:
            return None
        ts = np.array([t for t, _ in hist])
        methane = np.array([v for _, v in hist])
        temp_t = np.array([t for t, _ in series[0]])
        temp_v = np.array([v for _, v in series[0]])
        temperature = np.interp(ts, temp_t, temp_v)
        if methane.std() == 0 or temperature.std() == 0:
            return None
        return float(np.corrcoef(methane, temperature)[0, 1])

    def export_state(self, keys: np.ndarray) -> dict[str, np.ndarray]:
        state = super().export_state(keys)
        hists = [self.history.get(key, []) for key in keys.tolist()]
        state.update(
            hist_len=np.array([len(h) for h in hists], np.int64),
            hist_ts=np.array([t for h in hists for t, _ in h], np.float64),
            hist_value=np.array([v for h in hists for _, v in h], np.float64),
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

    def reset(self, keys: np.ndarray, now: float) -> None:
        super().reset(keys, now)
        self.judged[keys], self.leaky[keys] = 0, False
        self.seen[keys] = -np.inf
        for key in keys.tolist():
            self.history.pop(key, None)

    def restore(self, key: int, level: int, last_ts: float | None = None) -> None:
        super().restore(key, level, last_ts)
        if last_ts is not None and key < self.seen.shape[0]:
            self.seen[key] = max(self.seen[key], last_ts)
        if key < self.judged.shape[0]:
            self.judged[key] = level
