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
from rules.state import PerSensorState


class InterruptionEvaluator(PerSensorState):
    def __init__(self, rule: InterruptionRule, registry: Registry, now: float) -> None:
        cap = registry.capacity
        self.last_rx = np.full(cap, now)
        self.last_ts = np.full(cap, np.nan)
        self.flagged = np.zeros(cap, bool)
        self.started = now
        self.rule = rule
        self.configure(rule, registry)

    @property
    def id(self) -> str:
        return self.rule.id

    def configure(
        self, rule: InterruptionRule, registry: Registry, now: float | None = None
    ) -> None:
        """(Re)compile.  Sensors that come under the rule now start their silence clock now."""
        self.rule = rule
        cap = registry.capacity
        before = getattr(self, "applies", np.zeros(0, bool))
        if cap > self.last_rx.shape[0]:
            grow = cap - self.last_rx.shape[0]
            self.last_rx = np.concatenate([self.last_rx, np.full(grow, self.started)])
            self.last_ts = np.concatenate([self.last_ts, np.full(grow, np.nan)])
            self.flagged = np.concatenate([self.flagged, np.zeros(grow, bool)])
        self.applies = np.zeros(cap, bool)
        if rule.enabled:
            for sensor in registry.sensors.values():
                if rule.selector.matches(sensor):
                    self.applies[registry.keys[sensor.id]] = True
        if now is not None:
            new = self.applies.copy()
            new[: before.shape[0]] &= ~before
            self.last_rx[new] = np.maximum(self.last_rx[new], now)
        self.limit = registry.interval[:cap] * rule.factor

    def written(self) -> InterruptionRule:
        return self.rule

    def restore(self, key: int, level: int, last_ts: float | None = None) -> None:
        if key < self.flagged.shape[0]:
            self.flagged[key] = level != 0

    STATE = ("last_rx", "last_ts", "flagged")

    def reset(self, keys: np.ndarray, now: float) -> None:
        """Forget sensors; if they come back, their silence clock starts at ``now``."""
        self.last_rx[keys], self.last_ts[keys], self.flagged[keys] = now, np.nan, False

    def evaluate(
        self, batch: ReadingBatch, registry: Registry, agree: np.ndarray | None = None
    ) -> list[Signal]:
        if not len(batch):
            return []
        keys = batch.sensor
        np.maximum.at(self.last_rx, keys, batch.received)
        np.fmax.at(self.last_ts, keys, batch.ts)
        back = np.unique(keys[self.flagged[keys]])
        signals = []
        for key in back:
            self.flagged[key] = False
            signals.append(self._signal(int(key), Level.CLEAR, float(self.last_rx[key]), registry))
        return signals

    def tick(self, now: float, registry: Registry, owned: np.ndarray | None = None) -> list[Signal]:
        silent = self.applies & ~self.flagged & (now - self.last_rx > self.limit)
        if owned is not None:
            silent &= owned[: silent.shape[0]]
        signals = []
        for key in np.flatnonzero(silent):
            self.flagged[key] = True
            signals.append(self._signal(int(key), Level(self.rule.level), now, registry))
        return signals

    def _signal(self, key: int, level: Level, at: float, registry: Registry) -> Signal:
        sensor = registry.by_key[key]
        last_ts = float(self.last_ts[key])
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
                "silent_for_s": round(at - float(self.last_rx[key]), 3),
                "limit_s": float(self.limit[key]),
                "last_reading_ts": None if np.isnan(last_ts) else last_ts,
            },
        )
