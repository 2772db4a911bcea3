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
from rules.state import SEEN, Column, SensorTable, TableState, column


class FlatlineEvaluator(TableState):
    """State in ``table`` (``rules.state``): a row per sensor the rule applies to."""

    last_value = column()
    since = column()
    seen = column()  # the newest judged event time
    flagged = column()

    def __init__(self, rule: FlatlineRule, registry: Registry) -> None:
        self.table = SensorTable({
            "last_value": Column(np.nan), "since": Column(np.nan),
            "seen": SEEN, "flagged": Column(False, bool),
        })  # fmt: skip
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
        self.applies = np.zeros(cap, bool)
        if rule.enabled:
            for sensor in registry.sensors.values():
                if rule.selector.matches(sensor):
                    self.applies[registry.keys[sensor.id]] = True
        self.table.assign(np.flatnonzero(self.applies), cap)
        with np.errstate(over="ignore"):  # a factor beyond any interval: never (inf)
            self.limit = registry.interval[:cap] * rule.factor

    def evaluate(
        self, batch: ReadingBatch, registry: Registry, agree: np.ndarray | None = None
    ) -> list[Signal]:
        if not len(batch):
            return []
        sub = batch.take(self.applies[batch.sensor])
        if not len(sub):
            return []
        sub = sub.take(self.table.fresh(self.row[sub.sensor], sub.ts))
        if not len(sub):
            return []
        order = np.argsort(sub.sensor, kind="stable")  # groups by sensor, time order kept
        k, t, v = sub.sensor[order], sub.ts[order], sub.value[order]
        r = self.row[k]
        n = k.shape[0]
        first = np.ones(n, bool)
        first[1:] = k[1:] != k[:-1]
        prev = np.empty(n)
        prev[1:] = v[:-1]
        prev[first] = self.last_value[r[first]]
        with np.errstate(invalid="ignore"):
            changed = ~(np.abs(v - prev) <= self.rule.tolerance)  # NaN prev counts as change
        run_start = np.where(changed, t, np.nan)
        carried = first & ~changed
        run_start[carried] = self.since[r[carried]]
        anchor = np.where(changed | first, np.arange(n), -1)
        since = run_start[np.maximum.accumulate(anchor)]
        stuck = (t - since) >= self.limit[k]
        if self.rule.floor is not None:
            stuck &= v > self.rule.floor  # held at the floor: zero suppression
        last = np.flatnonzero(np.append(first[1:], True))  # last reading of each sensor
        lr = r[last]
        self.last_value[lr], self.since[lr], self.seen[lr] = v[last], since[last], t[last]
        before = np.empty(n, bool)  # each reading's verdict before it, in its sensor's order
        before[1:] = stuck[:-1]
        before[first] = self.flagged[r[first]]
        self.flagged[lr] = stuck[last]
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

    def restore(self, key: int, level: int, last_ts: float | None = None) -> None:
        r = self.table.row_of(key)
        if r >= 0:
            self.flagged[r] = level != 0
