"""Rule engine: compiles rule specs into evaluators and runs them over batches.

``evaluate(batch)`` and ``tick(now)`` are pure in-memory steps; the caller persists what they
return.  Rules can be replaced at any time; evaluator state (active levels, timers) is kept.
"""

from __future__ import annotations

from dataclasses import replace
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from monitor.model import Category, Level, ReadingBatch, Signal
from monitor.registry import Registry
from rules.anomaly import AnomalyEvaluator, ShadowScores
from rules.composite import CompositeEvaluator
from rules.contract import Evaluator, make_evaluator
from rules.count import CountEvaluator
from rules.errors import RuleError
from rules.lateness import split_by_lateness
from rules.spec import (
    RULES_ADAPTER,
    AnyRule,
    CompositeRule,
    CountRule,
)
from rules.statecodec import StateFormatError, decode_state, encode_state
from rules.threshold import ThresholdEvaluator

PACKS_DIR = Path(str(resources.files("rules") / "packs"))  # package data


def load_pack(name: str) -> list[AnyRule]:
    """Load a shipped domain pack (``rules/packs/<name>.yaml``)."""
    path = PACKS_DIR / f"{name}.yaml"
    if not path.exists():
        raise RuleError(f"no rule pack named {name!r}")
    return load_rules_file(path)


def load_rules_file(path: Path) -> list[AnyRule]:
    data = yaml.safe_load(path.read_text()) or []
    if isinstance(data, dict):
        data = data.get("rules", [])
    return RULES_ADAPTER.validate_python(data)


def in_event_time(signals: list[Signal]) -> list[Signal]:
    """The signals of a batch in event-time order across rules (stable: at one instant,
    sensor-health verdicts first, then in rule order, group verdicts after their sources).
    The tracker applies them in this order, so what it records (the level an alert had when
    its sensor went into fault, whether a process alert of that instant is suspect) does not
    depend on where micro-batches begin and end, nor on the order the rules were loaded in."""
    return sorted(signals, key=lambda s: (s.ts, s.category != Category.SENSOR_HEALTH))


class RuleEngine:
    def __init__(self, registry: Registry, now: float) -> None:
        self.registry = registry
        self.started = now
        # every per-sensor rule, by id (``rules.contract``), and the group rules by id
        self.evaluators: dict[str, Evaluator] = {}
        self.groups: dict[str, CountEvaluator | CompositeEvaluator] = {}
        self._registry_version = registry.version
        self.watermark = np.full(registry.capacity, -np.inf)  # newest event time judged
        # Sensors whose state this process owns (Kafka partitions); None means all of them.
        self.owned: np.ndarray | None = None

    @property
    def rules(self) -> dict[str, AnyRule]:
        out: dict[str, AnyRule] = {k: v.written() for k, v in self.evaluators.items()}
        out.update({k: v.rule for k, v in self.groups.items()})
        return out

    def upsert(self, rule: AnyRule, now: float | None = None) -> None:
        if rule.id in self.rules and type(self.rules[rule.id]) is not type(rule):
            raise RuleError(f"rule {rule.id!r} cannot change its type", rule=rule.id)
        if isinstance(rule, CountRule | CompositeRule):
            if rule.id in self.groups:
                self.groups[rule.id].configure(rule, self.registry)  # type: ignore[arg-type]
            else:
                group = CountEvaluator if isinstance(rule, CountRule) else CompositeEvaluator
                self.groups[rule.id] = group(rule, self.registry)  # type: ignore[arg-type]
        elif rule.id in self.evaluators:
            self.evaluators[rule.id].configure(rule, self.registry, now)
        else:
            self.evaluators[rule.id] = make_evaluator(rule, self.registry, self.started)

    def graded(self) -> dict[str, ThresholdEvaluator]:
        """The graded rules (threshold, rate, window, spike, drift, leak)."""
        return {
            k: e
            for k, e in self.evaluators.items()
            if isinstance(e, ThresholdEvaluator) and not isinstance(e, AnomalyEvaluator)
        }

    def restore(
        self, rule_id: str, sensor_key: int, level: int, last_ts: float | None = None
    ) -> None:
        """Re-arm state from the store (an alert that is still active).  ``last_ts``, the
        event time of the alert's last transition, keeps replayed older readings from being
        judged against the newer state."""
        evaluator = self.evaluators.get(rule_id)
        if evaluator is None:
            return
        evaluator.restore(sensor_key, level, last_ts)
        sensor = self.registry.by_key.get(sensor_key)
        for group in self.groups.values():
            if sensor is not None and rule_id in group.sources:
                group.follow(self._restored_signal(rule_id, sensor.id, sensor.site, level))

    def _refresh(self, now: float) -> None:
        if self.registry.version != self._registry_version:
            self._registry_version = self.registry.version
            for rule in list(self.rules.values()):
                self.upsert(rule, now)

    def judge(
        self, batch: ReadingBatch, now: float, allowed_lateness_s: float
    ) -> tuple[list[Signal], ReadingBatch]:
        """Judge a batch sorted by event time: on-time readings by every rule, late ones in
        their place, too-late ones retrospectively (see ``rules.lateness``).  Returns the
        signals and the too-late readings."""
        self._refresh(now)
        self._grow_watermark()
        on_time, late, too_late = split_by_lateness(batch, self.watermark, allowed_lateness_s)
        if len(on_time):
            np.maximum.at(self.watermark, on_time.sensor, on_time.ts)
        signals = self.evaluate(on_time, now)
        if len(late):
            signals += self.evaluate_late(late)
        if len(too_late):
            signals += self.retrospective(too_late)
        return in_event_time(signals), too_late

    def _grow_watermark(self) -> None:
        if self.watermark.shape[0] < self.registry.capacity:
            grown = np.full(self.registry.capacity, -np.inf)
            grown[: self.watermark.shape[0]] = self.watermark
            self.watermark = grown

    def restore_watermarks(self, newest: dict[int, float]) -> None:
        """The newest event time already judged per sensor (from the store, at start): a
        reading not newer than it is late or a duplicate, never judged as new."""
        self._grow_watermark()
        if newest:
            keys = np.fromiter(newest, np.int64, len(newest))
            keys_ok = keys < self.watermark.shape[0]
            ts = np.fromiter(newest.values(), np.float64, len(newest))
            np.maximum.at(self.watermark, keys[keys_ok], ts[keys_ok])

    def seen_before(self, batch: ReadingBatch) -> np.ndarray:
        """Readings not newer than their sensor's watermark: replays, resends, late data."""
        self._grow_watermark()
        return batch.ts <= self.watermark[batch.sensor]

    def evaluate_late(self, batch: ReadingBatch) -> list[Signal]:
        """Late readings within the allowance raise a threshold level, never lower it."""
        out: list[Signal] = []
        for evaluator in self.evaluators.values():
            if type(evaluator) is ThresholdEvaluator:
                out.extend(evaluator.raise_only(batch, self.registry))
        return out + self._count(out)

    def retrospective(self, batch: ReadingBatch) -> list[Signal]:
        """Judge history on fresh copies of the graded rules: alerts marked retrospective,
        resolved at the end of the batch, live state untouched."""
        out: list[Signal] = []
        for rule_id, evaluator in self.graded().items():
            keys = batch.sensor[batch.sensor < len(evaluator.applies)]
            if not evaluator.applies[keys].any():
                continue  # no sensor of the batch is judged by it: no fresh copy to build
            fresh = make_evaluator(evaluator.written(), self.registry, self.started)
            signals = [replace(s, retrospective=True) for s in fresh.evaluate(batch, self.registry)]
            ends = {signal.fingerprint: signal for signal in signals}
            out.extend(signals)
            for last in ends.values():
                if last.level:
                    out.append(
                        Signal(
                            rule_id,
                            last.sensor,
                            last.site,
                            Level.CLEAR,
                            last.category,
                            last.ts,
                            last.received,
                            evidence={"type": "end of retrospective batch"},
                            retrospective=True,
                        )
                    )
        return out

    def evaluate(self, batch: ReadingBatch, now: float) -> list[Signal]:
        """Evaluate a batch sorted by event time; ``now`` is processing time."""
        self._refresh(now)
        signals: list[Signal] = []
        agree = np.zeros(len(batch), np.int8)
        anomalies = [e for e in self.evaluators.values() if isinstance(e, AnomalyEvaluator)]
        for anomaly in anomalies:  # first: an agreeing anomaly raises the other rules
            signals.extend(anomaly.evaluate(batch, self.registry))
            if anomaly.spec.raise_thresholds and anomaly.side.shape[0] == len(batch):
                agree = np.where(agree == 0, anomaly.side, agree).astype(np.int8)
        for evaluator in self.evaluators.values():
            if not isinstance(evaluator, AnomalyEvaluator):
                signals.extend(evaluator.evaluate(batch, self.registry, agree))
        return in_event_time(signals + self._count(signals))

    def _count(self, signals: list[Signal]) -> list[Signal]:
        """Group rules (count, composite) follow the other rules' signals one by one in
        event-time order, so their verdicts do not depend on micro-batch boundaries."""
        groups = list(self.groups.values())
        if not signals or not groups:
            return []
        out: list[Signal] = []
        pending = sorted(signals, key=lambda s: (s.ts, s.site, s.sensor or "", s.rule))
        while pending:
            signal = pending.pop(0)
            produced = [new for group in groups for new in group.observe(signal)]
            out.extend(produced)
            pending[:0] = produced  # group verdicts feed composites at once
        return out

    def restore_subject(self, rule_id: str, subject: str, level: int) -> None:
        """Re-arm a group rule (count) from an active alert of an item or site."""
        if rule_id in self.groups:
            self.groups[rule_id].restore(subject, level)
        for group in self.groups.values():
            if rule_id in group.sources:
                group.follow(self._restored_signal(rule_id, None, subject, level))

    @staticmethod
    def _restored_signal(rule: str, sensor: str | None, subject: str, level: int) -> Signal:
        site = subject.split("/", 1)[0]
        item = subject if sensor is None and "/" in subject else None
        return Signal(rule, sensor, site, Level(level), Category.PROCESS, 0.0, 0.0, item=item)

    def tick(self, now: float) -> list[Signal]:
        self._refresh(now)
        signals: list[Signal] = []
        owned = self.owned
        if owned is not None and owned.shape[0] < self.registry.capacity:
            owned = np.concatenate([owned, np.zeros(self.registry.capacity - owned.shape[0], bool)])
        for evaluator in self.evaluators.values():
            signals.extend(evaluator.tick(now, self.registry, owned))
        return signals

    def drain_shadow(self) -> list[ShadowScores]:
        """Scores and would-be alerts of shadow-mode anomaly rules since the last call."""
        anomalies = [e for e in self.evaluators.values() if isinstance(e, AnomalyEvaluator)]
        return [r for a in anomalies for r in a.drain_shadow()]

    def export_arrays(self, keys: np.ndarray) -> dict[str, np.ndarray]:
        """The state of the given sensors.  Every export is a copy (the evaluator contract),
        so it stays as it is while judging goes on, and can be encoded (``encode_state``)
        and written outside the pipeline lock."""
        arrays: dict[str, np.ndarray] = {"keys": np.asarray(keys, np.int64)}
        arrays["engine|watermark"] = self.watermark[keys] if keys.size else np.empty(0)
        for rule_id, evaluator in self.evaluators.items():
            for name, values in evaluator.export_state(keys).items():
                arrays[f"{rule_id}|{name}"] = values
        sites = self._sites(keys)
        for rule_id, group in self.groups.items():
            for name, values in group.export_state(sites).items():
                arrays[f"{rule_id}|{name}"] = values
        return arrays

    def export_state(self, keys: np.ndarray) -> bytes:
        """Serialize the state of the given sensors (``encode_state``)."""
        return encode_state(self.export_arrays(keys))

    def import_state(self, data: bytes, now: float) -> int:
        """Restore what ``export_state`` wrote (or an npz, as snapshots were before); rules
        that no longer exist are skipped.  Returns the number of sensors restored."""
        self._refresh(now)
        try:
            arrays = decode_state(data)
        except StateFormatError as err:
            raise RuleError(str(err)) from err
        keys = arrays.get("keys")
        if keys is None:
            raise RuleError("snapshot has no sensor keys")
        if keys.size and int(keys.max()) >= self.registry.capacity:
            raise RuleError("snapshot names sensors this registry does not know")
        grouped: dict[str, dict[str, np.ndarray]] = {}
        for name, values in arrays.items():
            if "|" in name:
                rule_id, field = name.split("|", 1)
                grouped.setdefault(rule_id, {})[field] = values
        if "engine" in grouped and grouped["engine"]["watermark"].shape[0] == keys.shape[0]:
            self.watermark[keys] = grouped["engine"]["watermark"]
        for rule_id, state in grouped.items():
            if rule_id in self.evaluators:
                self.evaluators[rule_id].import_state(keys, state)
            elif rule_id in self.groups and "subjects" in state:
                self.groups[rule_id].import_state(state)
        return int(keys.shape[0])

    def reset(self, keys: np.ndarray, now: float) -> None:
        self._refresh(now)
        for evaluator in self.evaluators.values():
            evaluator.reset(keys, now)
        sites = self._sites(keys)
        for group in self.groups.values():
            group.reset_sites(sites)

    def _sites(self, keys: np.ndarray) -> set[str]:
        by_key = self.registry.by_key
        return {by_key[k].site for k in keys.tolist() if k in by_key}
