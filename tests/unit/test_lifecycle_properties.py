"""The alert lifecycle's invariants over many random interleavings, on the pure tracker.

The store is modelled by ``MemoryStore``, which enforces what PostgreSQL enforces: the partial
unique index (one active alert per fingerprint, row by row in the order ``write_events`` writes
them) and the unique key of events.  The same machine runs on PostgreSQL through the real
pipeline in ``tests/integration/test_lifecycle_store.py``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings

from alerts.history import HistoryEvent
from alerts.model import Alert, AlertEvent, alert_to_dict
from alerts.sla import SlaPolicy, escalate
from alerts.tracker import AlertTracker
from monitor.model import Category, Level, Signal
from tests.lifecycle_machine import HEALTH_RULE, PROCESS_RULE, LifecycleMachine, World, project

THRESHOLDS = ((1, 75.0), (2, 50.0), (3, 25.0), (4, 10.0))


def process_level(value: float) -> int:
    return next((level for level, at in THRESHOLDS if value >= at), 0)


class MemoryStore:
    def __init__(self) -> None:
        self.alerts: dict[str, Alert] = {}
        self.events: dict[str, list[AlertEvent]] = defaultdict(list)
        self.keys: set[tuple[str, str, float, int, str]] = set()

    def write(self, events: list[AlertEvent]) -> None:
        """As ``monitor.store.alerts.write_events``: the latest row of every alert touched,
        in the order first touched, unless the store's has more transitions, each checked
        against the partial unique index."""
        for alert in {e.alert.id: e.alert for e in events}.values():
            stored = self.alerts.get(alert.id)
            if stored is not None and stored.transitions > alert.transitions:
                continue  # an older version (a replay): the upsert leaves the row alone
            clash = [
                a.id
                for a in self.alerts.values()
                if alert.active and a.active and a.fingerprint == alert.fingerprint
                and a.id != alert.id
            ]  # fmt: skip
            assert not clash, f"alerts_one_active violated by {alert.id} against {clash}"
            self.alerts[alert.id] = alert
        for e in events:
            key = (e.alert.id, e.kind.value, e.ts, int(e.level), e.detail.get("tier", ""))
            assert key not in self.keys, f"the store would drop event {key}"
            self.keys.add(key)
            self.events[e.alert.id].append(e)


class MemoryWorld(World):
    def __init__(self) -> None:
        self.clock = 1_700_000_000.0
        self.store = MemoryStore()
        self.tracker = AlertTracker()
        self.rule_level: dict[str, int] = {}
        self.policy = SlaPolicy()

    def now(self) -> float:
        return self.clock

    def advance(self, seconds: float) -> None:
        self.clock += seconds

    def reading(self, sensor: str, value: float) -> list[AlertEvent]:
        """Like the rule engine: a signal when a rule's level for the sensor changes."""
        events: list[AlertEvent] = []
        for rule, category, level in (
            (PROCESS_RULE, Category.PROCESS, process_level(value)),
            (HEALTH_RULE, Category.SENSOR_HEALTH, 3 if value > 100 else 0),
        ):
            fp = f"{rule}|{sensor}"
            if self.rule_level.get(fp, 0) == level:
                continue
            self.rule_level[fp] = level
            threshold = {"threshold": dict(THRESHOLDS).get(level, 100.01)}
            signal = Signal(
                rule, sensor, "s1", Level(level), category, self.clock, self.clock, value,
                evidence=threshold,
            )  # fmt: skip
            events += self.tracker.observe(signal, self.clock)
        self.store.write(events)
        return events

    def act(self, alert_id: str, action: Callable[[Alert, float], AlertEvent]) -> AlertEvent:
        current = self.tracker.get(alert_id) or self.store.alerts[alert_id]
        event = action(current, self.clock)
        self.store.write([event])
        self.tracker.apply(event.alert)
        return event

    def tick(self) -> list[AlertEvent]:
        events = escalate(list(self.tracker.active.values()), self.clock, self.policy)
        self.store.write(events)
        for event in events:
            self.tracker.apply(event.alert)
        return events

    def restart(self) -> None:
        """A new process: memory from the store, rule state re-armed from active alerts."""
        self.tracker = AlertTracker()
        kept = [a for a in self.store.alerts.values() if a.active or a.waiting]
        self.tracker.restore(kept)
        self.rule_level = {a.fingerprint: int(a.level) for a in kept if a.active}

    def stored(self) -> dict[str, dict[str, Any]]:
        return {
            i: project(a) | {"waiting": a.waiting, "active": a.active}
            for i, a in self.store.alerts.items()
        }

    def history(self) -> dict[str, list[HistoryEvent]]:
        return {
            i: [HistoryEvent(e.kind.value, int(e.level), e.actor, e.detail) for e in events]
            for i, events in self.store.events.items()
        }


class MemoryLifecycle(LifecycleMachine):
    world_factory = MemoryWorld


MemoryLifecycle.TestCase.settings = settings(
    max_examples=400,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestMemoryLifecycle = MemoryLifecycle.TestCase


def test_project_reads_the_lifecycle_fields() -> None:
    tracker = AlertTracker()
    (event,) = tracker.observe(
        Signal(PROCESS_RULE, "gas-1", "s1", Level.RED, Category.PROCESS, 1.0, 1.0, 80.0), 1.0
    )
    assert project(event.alert) == project(alert_to_dict(event.alert))
    assert project(event.alert)["level"] == 1 and project(event.alert)["state"] == "open"
