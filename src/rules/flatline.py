"""Stuck / flatline detection (sensor health), vectorized over a batch.

For each sensor the evaluator keeps the last value and since when it has not changed (beyond a
tolerance).  Within a batch (sorted by event time) readings are grouped by sensor with a
stable sort; a change point opens a new run, and a running maximum over change-point positions
gives each reading the start of its run, so no per-reading Python runs.
"""

from __future__ import annotations

import numpy as np

from monitor.model import Category, Level, ReadingBatch, Signal
from monitor.registry import Registry
from rules.spec import FlatlineRule
from rules.state import PerSensorState, repeats


class FlatlineEvaluator(PerSensorState):
    STATE: tuple[str, ...] = ("last_value", "since", "last_ts", "flagged")

    def __init__(self, rule: FlatlineRule, registry: Registry) -> None:
        cap = registry.capacity
        self.last_value = np.full(cap, np.nan)
        self.since = np.full(cap, np.nan)
        self.last_ts = np.full(cap, -np.inf)
        self.flagged = np.zeros(cap, bool)
        self.rule = rule
        self.configure(rule, registry)

    @property
    def id(self) -> str:
        return self.rule.id

    def written(self) -> FlatlineRule:
        return self.rule

    def tick(self, now: float, registry: Registry, owned: np.ndarray | None = None) -> list[Signal]:
        return []  # judged on readings only

    def configure(self, rule: FlatlineRule, registry: Registry, now: float | None = None) -> None:
        self.rule = rule
        cap = registry.capacity
        if cap > self.last_value.shape[0]:
            extra = cap - self.last_value.shape[0]
            self.last_value = np.concatenate([self.last_value, np.full(extra, np.nan)])
            self.since = np.concatenate([self.since, np.full(extra, np.nan)])
            self.last_ts = np.concatenate([self.last_ts, np.full(extra, -np.inf)])
            self.flagged = np.concatenate([self.flagged, np.zeros(extra, bool)])
        self.applies = np.zeros(cap, bool)
        if rule.enabled:
            for sensor in registry.sensors.values():
                if rule.selector.matches(sensor):
                    self.applies[registry.keys[sensor.id]] = True
        self.limit = registry.interval[:cap] * rule.factor

    def evaluate(
        self, batch: ReadingBatch, registry: Registry, agree: np.ndarray | None = None
    ) -> list[Signal]:
        if not len(batch):
            return []
        keys = batch.sensor
        fresh = self.applies[keys] & (batch.ts > self.last_ts[keys])
        if not fresh.any():
            return []
        sub = batch.take(fresh)
        sub = sub.take(~repeats(sub.sensor, sub.ts))
        order = np.argsort(sub.sensor, kind="stable")  # groups by sensor, time order kept
        k, t, v = sub.sensor[order], sub.ts[order], sub.value[order]
        n = k.shape[0]
        first = np.ones(n, bool)
        first[1:] = k[1:] != k[:-1]
        prev = np.empty(n)
        prev[1:] = v[:-1]
        prev[first] = self.last_value[k[first]]
        with np.errstate(invalid="ignore"):
            changed = ~(np.abs(v - prev) <= self.rule.tolerance)  # NaN prev counts as change
        run_start = np.where(changed, t, np.nan)
        carried = first & ~changed
        run_start[carried] = self.since[k[carried]]
        anchor = np.where(changed | first, np.arange(n), -1)
        since = run_start[np.maximum.accumulate(anchor)]
        stuck = (t - since) >= self.limit[k]
        last = np.flatnonzero(np.append(first[1:], True))  # last reading of each sensor
        lk = k[last]
        self.last_value[lk], self.since[lk], self.last_ts[lk] = v[last], since[last], t[last]
        before = np.empty(n, bool)  # each reading's verdict before it, in its sensor's order
        before[1:] = stuck[:-1]
        before[first] = self.flagged[k[first]]
        self.flagged[lk] = stuck[last]
        signals = []
        for j in np.flatnonzero(stuck != before):
            key = int(k[j])
            sensor = registry.by_key[key]
            signals.append(
                Signal(
                    rule=self.rule.id,
                    sensor=sensor.id,
                    site=sensor.site,
                    level=Level(self.rule.level if stuck[j] else 0),
                    category=Category.SENSOR_HEALTH,
                    ts=float(t[j]),
                    received=float(sub.received[0]),
                    value=float(v[j]),
                    evidence={
                        "type": "flatline",
                        "unchanged_since": float(since[j]),
                        "unchanged_for_s": float(t[j] - since[j]),
                        "limit_s": float(self.limit[key]),
                        "tolerance": self.rule.tolerance,
                    },
                )
            )
        return signals

    def reset(self, keys: np.ndarray, now: float) -> None:
        self.last_value[keys], self.since[keys] = np.nan, np.nan
        self.last_ts[keys], self.flagged[keys] = -np.inf, False

    def restore(self, key: int, level: int, last_ts: float | None = None) -> None:
        if key < self.flagged.shape[0]:
            self.flagged[key] = level != 0
