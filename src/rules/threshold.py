"""Vectorized evaluator for graded threshold rules with deadband, on-delay and off-delay.

Per-sensor parameters and state live in numpy arrays indexed by sensor key.  For a batch the
raw level of every reading is computed at once; only readings of sensors that are, or become,
non-normal go through the per-reading state machine (hysteresis and delays are sequential).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from monitor.model import FloatArray, Level, ReadingBatch, Signal
from monitor.registry import Registry
from rules import reach
from rules.spec import GradedRule, ReachedRule, ThresholdRule
from rules.state import Column, SensorTable, TableState, column

_NO_TIME = -np.inf


GRADED = {
    "active": Column(0, np.int8),
    "pending": Column(0, np.int8),  # 0 nothing pending, -1 a pending clear, else the level
    "since": Column(_NO_TIME),
    "last_ts": Column(_NO_TIME),
    "changed_at": Column(_NO_TIME),  # event time of the last level change
    "streak": Column(0, np.int16),  # readings in a row of a pending opening
}


def plausible(rule: GradedRule, values: FloatArray) -> np.ndarray:
    """Which readings the rule judges: all, or those in its ``plausible`` range."""
    if rule.plausible is None:
        return np.ones(values.shape[0], bool)
    lo, hi = rule.plausible
    return np.asarray((values >= lo) & (values <= hi))


class ThresholdEvaluator(TableState):
    """State is kept in ``table`` (``rules.state``), one row per sensor the rule applies
    to; rules built on this one add their columns to it."""

    active = column()
    pending = column()
    since = column()
    last_ts = column()
    changed_at = column()
    streak = column()

    def __init__(self, rule: GradedRule, registry: Registry) -> None:
        self.table = SensorTable(GRADED)
        self.rule = rule
        self.configure(rule, registry)

    @property
    def id(self) -> str:
        return self.rule.id

    def written(self) -> Any:
        return self.rule

    def tick(self, now: float, registry: Registry, owned: np.ndarray | None = None) -> list[Signal]:
        return []  # judged on readings only

    def configure(self, rule: GradedRule, registry: Registry, now: float | None = None) -> None:
        """(Re)compile parameters; state is kept, so a live threshold change needs no restart.

        Parameters are kept per *group* of sensors that share them (the rule's own values and
        each distinct override), so a sensor costs a small group number, not its own copy."""
        self.rule = rule
        cap = registry.capacity
        self.applies = np.zeros(cap, bool)
        group = np.zeros(cap, np.int16)
        groups: dict[tuple[object, ...], int] = {}
        if rule.enabled:
            for sensor in registry.sensors.values():
                if not rule.selector.matches(sensor):
                    continue
                levels, db, on, off = rule.params_for(sensor)
                params = (tuple(levels.get(k, np.nan) for k in (1, 2, 3, 4)), db, on, off)
                key = registry.keys[sensor.id]
                self.applies[key] = True
                group[key] = groups.setdefault(params, len(groups))
        table = sorted(groups, key=groups.__getitem__) or [((np.nan,) * 4, 0.0, 0.0, 0.0)]
        self.thr_table = np.array([p[0] for p in table], np.float64)
        self.deadband_table = np.array([p[1] for p in table], np.float64)
        self.on_delay_table = np.array([p[2] for p in table], np.float64)
        self.off_delay_table = np.array([p[3] for p in table], np.float64)
        keys = np.flatnonzero(self.applies)
        if isinstance(rule, ReachedRule) and rule.max_rate is not None:
            self.table.define(reach.COLUMNS)
        self.table.assign(keys, cap)  # each sensor kept keeps its state
        self.group = group[keys]

    def thr(self, keys: np.ndarray) -> np.ndarray:
        """Set-points (red .. blue, NaN where unset or the rule does not apply) of each key."""
        rows = self.row[keys]
        out = np.full((keys.shape[0], 4), np.nan)
        ok = rows >= 0
        out[ok] = self.thr_table[self.group[rows[ok]]]
        return out

    def judged_values(self, values: FloatArray) -> np.ndarray:
        """Which of these values the state machine judges (the rule's ``plausible`` range)."""
        return plausible(self.rule, values)

    def _param(self, table: np.ndarray, key: int) -> float:
        return float(table[self.group[self.row[key]]])

    def _row(self, key: int) -> int:
        return self.table.row_of(key)

    def restore(self, key: int, level: int, last_ts: float | None = None) -> None:
        r = self._row(key)
        if r >= 0:
            self.active[r] = level
            if last_ts is not None:
                self.last_ts[r] = max(self.last_ts[r], last_ts)
                self.changed_at[r] = max(self.changed_at[r], last_ts)

    def _rows(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(which of ``keys`` have a row, their rows)."""
        return self.table.rows(keys)

    def raw_levels(self, keys: np.ndarray, values: FloatArray) -> np.ndarray:
        """Level each value reaches without hysteresis (0 = normal)."""
        thr = self.thr(keys)
        with np.errstate(invalid="ignore"):
            hit = (
                values[:, None] >= thr if self.rule.direction == "high" else values[:, None] <= thr
            )
        first = np.argmax(hit, axis=1)
        return np.where(hit.any(axis=1), first + 1, 0).astype(np.int8)

    def evaluate(
        self, batch: ReadingBatch, registry: Registry, agree: np.ndarray | None = None
    ) -> list[Signal]:
        """Evaluate a batch sorted by event time.  Readings not newer than the sensor's last
        evaluated reading (duplicates, out-of-order) are not evaluated again.  ``agree``
        gives, per reading, the side of an anomaly on the same sensor (+1 above, -1 below);
        a raw level reached on that side is raised by one (blue to yellow, ..., never past
        red)."""
        if not len(batch):
            return []
        keys = batch.sensor
        mask = self.applies[keys] & self.judged_values(batch.value)
        rule = self.rule
        if not (isinstance(rule, ThresholdRule) and rule.max_rate is not None and mask.any()):
            return self._judge(batch, mask, registry, agree)
        # newer readings only (a derived value is no reading: its rule filtered)
        idx = np.flatnonzero(mask)
        idx = idx[batch.ts[idx] > self.last_ts[self.row[keys[idx]]]]
        mask[:] = False
        mask[idx] = reach.within_reach(
            self.table, self.row[keys[idx]], batch.ts[idx], batch.value[idx],
            rule.max_rate, rule.max_rate_slack,
        )  # fmt: skip
        signals = self._judge(batch, mask, registry, agree)
        far = idx[~mask[idx]]  # judged too (after the batch), though not by the levels
        np.maximum.at(self.last_ts, self.row[keys[far]], batch.ts[far])
        return signals

    def _judge(
        self,
        batch: ReadingBatch,
        mask: np.ndarray,
        registry: Registry,
        agree: np.ndarray | None,
    ) -> list[Signal]:
        """The readings of ``mask`` through the levels and the state machine."""
        keys = batch.sensor
        if not mask.any():
            return []
        keys, ts, values = keys[mask], batch.ts[mask], batch.value[mask]
        received = batch.received[mask]
        raw = self.raw_levels(keys, values)
        boosted = np.zeros(raw.shape[0], bool)
        if agree is not None:
            side = 1 if self.rule.direction == "high" else -1
            boosted = (raw > 1) & (agree[mask] == side)
            raw = np.where(boosted, raw - 1, raw).astype(np.int8)
        rows = self.row[keys]
        busy = (raw != 0) | (self.active[rows] != 0) | (self.pending[rows] != 0)
        touched = np.isin(keys, np.unique(keys[busy])) if busy.any() else busy
        calm = ~touched
        if calm.any():
            np.maximum.at(self.last_ts, rows[calm], ts[calm])
        signals: list[Signal] = []
        origin = np.flatnonzero(mask)  # each reading's place in ``batch``
        for j in np.flatnonzero(touched):
            signal = self._step(
                int(keys[j]),
                float(ts[j]),
                float(values[j]),
                int(raw[j]),
                float(received[j]),
                registry,
                bool(boosted[j]),
                int(origin[j]),
            )
            if signal is not None:
                signals.append(signal)
        return signals

    def raise_only(self, batch: ReadingBatch, registry: Registry) -> list[Signal]:
        """Late readings: a raw level more severe than the active one raises it at once (its
        own event time on the alert); nothing is lowered or delayed by a late reading."""
        mask = self.applies[batch.sensor] & self.judged_values(batch.value)
        if not mask.any():
            return []
        sub = batch.take(mask)
        raw = self.raw_levels(sub.sensor, sub.value)
        out = []
        for j in np.flatnonzero(raw > 0):
            key, level, ts = int(sub.sensor[j]), int(raw[j]), float(sub.ts[j])
            r = self._row(key)
            active = int(self.active[r])
            if (active and level >= active) or ts <= self.changed_at[r]:
                continue
            self.active[r], self.changed_at[r] = level, ts
            self.pending[r], self.since[r] = 0, _NO_TIME
            value = float(sub.value[j])
            evidence = {
                "type": "threshold",
                "late": True,
                "direction": self.rule.direction,
                "threshold": float(self.thr(np.array([key]))[0, level - 1]),
                "value": float(sub.value[j]),
            }
            out.append(
                self.signal(key, level, ts, float(sub.received[j]), value, evidence, registry)
            )
        return out

    def _target(self, key: int, value: float, raw: int) -> int:
        active = int(self.active[self._row(key)])
        if active == 0 or (raw and raw <= active):
            return raw
        db = self._param(self.deadband_table, key)
        high = self.rule.direction == "high"
        levels = self.thr(np.array([key]))[0]
        for level in range(1, 5):
            thr = levels[level - 1]
            if np.isnan(thr):
                continue
            if level >= active:
                thr = thr - db if high else thr + db
            if (value >= thr) if high else (value <= thr):
                return level
        return 0

    def _step(
        self,
        key: int,
        ts: float,
        value: float,
        raw: int,
        received: float,
        registry: Registry,
        boosted: bool = False,
        at: int = -1,
    ) -> Signal | None:
        """One reading through the graded state machine (hysteresis, on- and off-delays);
        ``at``: its place in the batch, for ``explain``."""
        r = self._row(key)
        if ts <= self.last_ts[r]:
            return None
        self.last_ts[r] = ts
        active = int(self.active[r])
        target = self._target(key, value, raw)
        if target == active:
            self.pending[r] = 0
            self.since[r] = _NO_TIME
            self.streak[r] = 0
            return None
        raising = active == 0 or (target != 0 and target < active)
        # pending: 0 = nothing pending, -1 = a pending clear, else the pending level.
        pending = int(self.pending[r])
        if pending == 0:
            restart = True
        else:
            pending_raising = pending != -1 and (active == 0 or pending < active)
            restart = pending_raising != raising
        # Keep the timer while the change goes on in the same direction.
        if restart:
            self.since[r] = ts
            self.pending[r] = target if target else -1
        elif raising:
            self.pending[r] = target if target else -1
        elif target and (pending == -1 or target < pending):
            # lowering: the level to fall to is the most severe one of the whole delay, so a
            # dip at its end does not clear an alert whose readings stayed at yellow
            self.pending[r] = target
        if active == 0:  # an opening: ``confirm`` readings in a row
            self.streak[r] = 1 if restart else self.streak[r] + 1
            if self.streak[r] < self.rule.confirm:
                return None
        delay = self._param(self.on_delay_table if raising else self.off_delay_table, key)
        if ts - self.since[r] < delay:
            return None
        target = max(int(self.pending[r]), 0)
        self.active[r] = target
        self.changed_at[r] = ts
        self.pending[r] = 0
        self.since[r] = _NO_TIME
        self.streak[r] = 0
        evidence, value = self.explain(key, target, active, value, boosted, at)
        return self.signal(key, target, ts, received, value, evidence, registry)

    def explain(
        self, key: int, target: int, active: int, value: float, boosted: bool, at: int
    ) -> tuple[dict[str, Any], float]:
        """The evidence of a level change and the value the alert shows.  Rules that grade
        something else than the reading (the anomaly rule's run of anomalous readings) say
        what they saw here."""
        evidence: dict[str, Any] = {
            "type": "threshold",
            "direction": self.rule.direction,
            "threshold": float(self.thr(np.array([key]))[0, (target or active) - 1]),
            "deadband": self._param(self.deadband_table, key),
            "value": value,
        }
        if boosted and target:
            evidence["raised_by_anomaly"] = True
            evidence["threshold"] = float(self.thr(np.array([key]))[0, target])  # crossed
        return evidence, value

    def signal(
        self,
        key: int,
        level: int,
        ts: float,
        received: float,
        value: float,
        evidence: dict[str, Any],
        registry: Registry,
    ) -> Signal:
        """A verdict change of this rule for one sensor.  A health verdict whose fault holds
        reds back, or suppresses process alerts, says so in its evidence, which the alert keeps
        (``alerts.holdback``, ``alerts.suppression``)."""
        sensor = registry.by_key[key]
        if level and self.rule.fault_holds_red:
            evidence["holds_red"] = True
        if level and self.rule.fault_suppresses:
            evidence["suppresses"] = True  # alerts.suppression.SUPPRESSES
        return Signal(
            rule=self.rule.id,
            sensor=sensor.id,
            site=sensor.site,
            level=Level(level),
            category=self.rule.category,
            ts=ts,
            received=received,
            value=value,
            evidence=evidence,
        )
