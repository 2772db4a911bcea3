"""Data-interruption (数据中断) evaluator: a sensor silent for k x its expected interval.

Silence is measured in processing time (when data last *arrived*), because a device that
replays old data after reconnecting is not silent.  The clock starts at start-up for sensors
that have not reported yet, which doubles as a start-up grace period.
"""

from __future__ import annotations

import numpy as np

from monitor.model import Category, Level, ReadingBatch, Signal
from monitor.registry import Registry
from rules.spec import InterruptionRule
from rules.state import Column, SensorTable, TableState, column


class InterruptionEvaluator(TableState):
    """State in ``table`` (``rules.state``): a row per sensor the rule applies to."""

    last_rx = column()
    last_ts = column()
    flagged = column()

    def __init__(self, rule: InterruptionRule, registry: Registry, now: float) -> None:
        self.table = SensorTable({
            "last_rx": Column(now), "last_ts": Column(np.nan), "flagged": Column(False, bool),
        })  # fmt: skip
        self.started = now
        self.rule = rule
        self.configure(rule, registry)

    @property
    def id(self) -> str:
        return self.rule.id

    def configure(
        self, rule: InterruptionRule, registry: Registry, now: float | None = None
    ) -> None:
        """(Re)compile.  Sensors that come under the rule now start their silence clock now
        (at start-up, from the start)."""
        self.rule = rule
        cap = registry.capacity
        self.applies = np.zeros(cap, bool)
        if rule.enabled:
            for sensor in registry.sensors.values():
                if rule.selector.matches(sensor):
                    self.applies[registry.keys[sensor.id]] = True
        new = self.table.assign(np.flatnonzero(self.applies), cap)
        self.last_rx[new] = self.started if now is None else now
        with np.errstate(over="ignore"):  # a factor beyond any interval: never (inf)
            self.limit = registry.interval[:cap] * rule.factor

    def written(self) -> InterruptionRule:
        return self.rule

    def restore(self, key: int, level: int, last_ts: float | None = None) -> None:
        r = self.table.row_of(key)
        if r >= 0:
            self.flagged[r] = level != 0

    def reset(self, keys: np.ndarray, now: float) -> None:
        """Forget sensors; if they come back, their silence clock starts at ``now``."""
        super().reset(keys, now)
        ok, rows = self.table.rows(keys)
        self.last_rx[rows[ok]] = now

    def evaluate(
        self, batch: ReadingBatch, registry: Registry, agree: np.ndarray | None = None
    ) -> list[Signal]:
        held = self.applies[batch.sensor] if len(batch) else np.zeros(0, bool)
        if not held.any():
            return []
        rows = self.table.row[batch.sensor[held]]
        np.maximum.at(self.last_rx, rows, batch.received[held])
        np.fmax.at(self.last_ts, rows, batch.ts[held])
        back = np.unique(rows[self.flagged[rows]])
        signals = []
        for r in back.tolist():
            self.flagged[r] = False
            signals.append(self._signal(r, Level.CLEAR, float(self.last_rx[r]), registry))
        return signals

    def tick(self, now: float, registry: Registry, owned: np.ndarray | None = None) -> list[Signal]:
        keys = self.table.keys
        silent = ~self.flagged & (now - self.last_rx > self.limit[keys])
        if owned is not None:
            silent &= owned[keys]
        signals = []
        for r in np.flatnonzero(silent).tolist():
            self.flagged[r] = True
            signals.append(self._signal(r, Level(self.rule.level), now, registry))
        return signals

    def _signal(self, row: int, level: Level, at: float, registry: Registry) -> Signal:
        key = int(self.table.keys[row])
        sensor = registry.by_key[key]
        last_ts = float(self.last_ts[row])
        return Signal(
            rule=self.rule.id,
            sensor=sensor.id,
            site=sensor.site,
            level=level,
            category=Category.DATA_INTERRUPTION,
            ts=at,
            received=at,
            evidence={
                "type": "interruption",
                "silent_for_s": round(at - float(self.last_rx[row]), 3),
                "limit_s": float(self.limit[key]),
                "last_reading_ts": None if np.isnan(last_ts) else last_ts,
            },
        )
