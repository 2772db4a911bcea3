"""A hypothesis state machine over the alert lifecycle, shared by two worlds.

Random interleavings of readings crossing levels up and down (and a sensor fault), every
operator action (with and without force, by two people), SLA ticks and restarts.  A *world*
runs them: the pure tracker over an in-memory store that enforces the store's rules
(``MemoryWorld``, many examples), or the real pipeline, rules and operator actions on
PostgreSQL (``tests/integration/test_lifecycle_store.py``, a bounded number).

Invariants, checked after every step:
- at most one active alert per fingerprint in the store, and memory holds exactly those;
- every level the rules raise is stored: the sensor's alert is at that level (or, closed by an
  operator while active, at least as severe);
- no event is lost or duplicated (the store would drop a second event with the same key);
- every event's snapshot is the alert as it was then: later transitions never change it, and
  after each step the store holds the snapshot of the last event of every alert;
- replaying an alert's stored events gives the stored alert (``alerts.history``);
- a cleared alert nobody acknowledged stays waiting until someone does;
- a restart restores exactly what memory held.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from hypothesis import event as note_path
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from alerts import workflow
from alerts.errors import AlertStateError
from alerts.history import FIELDS, HistoryEvent, replay
from alerts.model import Alert, AlertEvent, ReasonCode, alert_to_dict
from alerts.tracker import AlertTracker

SENSORS = ("gas-1", "gas-2")
PROCESS_RULE, HEALTH_RULE = "gas.high", "gas.range"
# a value for each reading kind: the process level it gives, and whether the sensor is faulty
VALUES = {"clear": 3.0, "blue": 12.0, "yellow": 30.0, "orange": 55.0, "red": 80.0, "fault": 120.0}
LEVEL_OF = {"clear": 0, "blue": 4, "yellow": 3, "orange": 2, "red": 1, "fault": 1}
ACTORS = ("op-li", "op-wang")
ACTIONS = ("ack", "disposing", "dispose", "review", "comment", "assign", "shelve")


def action_of(name: str, actor: str, force: bool, reason: ReasonCode) -> Callable[..., AlertEvent]:
    """The pure transition an operator asks for, as ``(alert, now) -> event``."""
    calls: dict[str, Callable[[Alert, float], AlertEvent]] = {
        "ack": lambda a, now: workflow.acknowledge(a, actor, now),
        "disposing": lambda a, now: workflow.start_disposal(a, actor, now),
        "dispose": lambda a, now: workflow.dispose(
            a, actor, reason, "checked on site", now, force=force,
            force_reason="isolated, still venting" if force else None,
        ),
        "review": lambda a, now: workflow.review(a, actor, now),
        "comment": lambda a, now: workflow.comment(a, actor, now, "crew informed"),
        "assign": lambda a, now: workflow.assign(a, actor, now, "team-3"),
        "shelve": lambda a, now: workflow.shelve(a, actor, now, now + 600, "known work"),
    }  # fmt: skip
    return calls[name]


def project(alert: Alert | dict[str, Any]) -> dict[str, Any]:
    """The lifecycle fields of an alert or a stored row, comparable across both."""
    data = alert_to_dict(alert) if isinstance(alert, Alert) else alert
    return {f: data[f] for f in FIELDS} | {"id": data["id"], "fingerprint": data["fingerprint"]}


class World:
    """What the machine drives.  ``tracker`` is the memory; the rest is the store."""

    tracker: AlertTracker

    def now(self) -> float:
        raise NotImplementedError

    def advance(self, seconds: float) -> None:
        raise NotImplementedError

    def reading(self, sensor: str, value: float) -> list[AlertEvent]:
        raise NotImplementedError

    def act(self, alert_id: str, action: Callable[[Alert, float], AlertEvent]) -> AlertEvent:
        raise NotImplementedError

    def tick(self) -> list[AlertEvent]:
        raise NotImplementedError

    def restart(self) -> None:
        raise NotImplementedError

    def stored(self) -> dict[str, dict[str, Any]]:
        """Every stored alert by id: ``project`` fields plus ``waiting``."""
        raise NotImplementedError

    def history(self) -> dict[str, list[HistoryEvent]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class LifecycleMachine(RuleBasedStateMachine):
    world_factory: Callable[[], World]

    def __init__(self) -> None:
        super().__init__()
        self.world = type(self).world_factory()
        self.level: dict[str, int] = dict.fromkeys(SENSORS, 0)
        self.fault: dict[str, bool] = dict.fromkeys(SENSORS, False)
        self.emitted: list[tuple[AlertEvent, dict[str, Any]]] = []

    def teardown(self) -> None:
        self.world.close()

    def _record(self, events: list[AlertEvent]) -> None:
        self.emitted += [(e, alert_to_dict(e.alert)) for e in events]
        for e in events:  # shown by --hypothesis-show-statistics: which paths were reached
            note_path(f"{e.kind.value}{' forced' if e.detail.get('forced') else ''}")

    @rule(sensor=st.sampled_from(SENSORS), kind=st.sampled_from(list(VALUES)))
    def reading(self, sensor: str, kind: str) -> None:
        self.world.advance(30)
        self._record(self.world.reading(sensor, VALUES[kind]))
        self.level[sensor], self.fault[sensor] = LEVEL_OF[kind], kind == "fault"

    @rule(
        name=st.sampled_from(ACTIONS),
        pick=st.integers(0, 10_000),
        actor=st.sampled_from(ACTORS),
        force=st.booleans(),
        reason=st.sampled_from(list(ReasonCode)),
        on_active=st.booleans(),
    )
    def operator(
        self, name: str, pick: int, actor: str, force: bool, reason: ReasonCode, on_active: bool
    ) -> None:
        """An action on any stored alert, or (half the time) on one whose condition holds."""
        stored = self.world.stored()
        ids = sorted(i for i, r in stored.items() if r["active"] or not on_active)
        if not ids:
            return
        self.world.advance(5)
        alert_id = ids[pick % len(ids)]
        before = self.world.stored()
        try:
            event = self.world.act(alert_id, action_of(name, actor, force, reason))
        except AlertStateError:
            assert self.world.stored() == before, "a refused action changed the store"
            return
        assert event.actor == actor
        self._record([event])

    @rule(seconds=st.sampled_from([60.0, 400.0, 1000.0, 2000.0, 8000.0]))
    def tick(self, seconds: float) -> None:
        self.world.advance(seconds)
        self._record(self.world.tick())

    @rule()
    def restart(self) -> None:
        held = self._held()
        self.world.restart()
        assert self._held() == held, "a restart changed what memory holds"

    def _held(self) -> dict[str, dict[str, Any]]:
        t = self.world.tracker
        return {a.id: project(a) for a in [*t.active.values(), *t.waiting.values()]}

    @invariant()
    def one_active_alert_per_fingerprint_and_memory_holds_it(self) -> None:
        stored = self.world.stored()
        active: dict[str, list[str]] = defaultdict(list)
        for row in stored.values():
            if row["active"]:
                active[row["fingerprint"]].append(row["id"])
        assert all(len(ids) == 1 for ids in active.values()), active
        held = {fp: a.id for fp, a in self.world.tracker.active.items()}
        assert held == {fp: ids[0] for fp, ids in active.items()}

    @invariant()
    def every_level_raised_is_stored(self) -> None:
        stored = self.world.stored()
        for sensor in SENSORS:
            for rule_id, level in (
                (PROCESS_RULE, self.level[sensor]),
                (HEALTH_RULE, 3 if self.fault[sensor] else 0),
            ):
                fp = f"{rule_id}|{sensor}"
                rows = [r for r in stored.values() if r["fingerprint"] == fp and r["active"]]
                if level == 0:
                    assert rows == [], f"{fp} is clear but an alert is active"
                    continue
                assert len(rows) == 1, f"{fp} at level {level} has no active alert"
                row = rows[0]
                if row["state"] in ("closed", "reviewed"):
                    assert row["level"] <= level, (fp, row, level)
                else:
                    assert row["level"] == level, (fp, row, level)

    @invariant()
    def events_are_unique_and_all_stored(self) -> None:
        keys = [
            (e.alert.id, e.kind, e.ts, int(e.level), e.detail.get("tier", ""))
            for e, _ in self.emitted
        ]
        assert len(keys) == len(set(keys)), "two events share the store's unique key"
        history = self.world.history()
        assert sum(len(h) for h in history.values()) == len(self.emitted)

    @invariant()
    def snapshots_are_the_alert_as_it_was(self) -> None:
        last: dict[str, dict[str, Any]] = {}
        for event, frozen in self.emitted:
            assert alert_to_dict(event.alert) == frozen, "a later change altered a snapshot"
            last[event.alert.id] = frozen
        stored = self.world.stored()
        for alert_id, frozen in last.items():
            assert project(frozen) == {k: stored[alert_id][k] for k in project(frozen)}

    @invariant()
    def replaying_the_history_gives_the_stored_alert(self) -> None:
        stored = self.world.stored()
        for alert_id, events in self.world.history().items():
            assert replay(events) == {f: stored[alert_id][f] for f in FIELDS}, alert_id

    @invariant()
    def memory_equals_store_and_cleared_unacknowledged_alerts_wait(self) -> None:
        stored = self.world.stored()
        for alert_id, held in self._held().items():
            assert held == {k: stored[alert_id][k] for k in held}
        waiting = {i for i, r in stored.items() if r["waiting"]}
        t = self.world.tracker
        assert waiting == {a.id for a in [*t.active.values(), *t.waiting.values()] if a.waiting}
