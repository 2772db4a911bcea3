"""Alert tracker: one alert per fingerprint through its life; operator transitions."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.errors import AlertStateError
from alerts.model import AlertState, EventKind, ReasonCode
from alerts.tracker import AlertTracker, acknowledge, dispose
from monitor.model import Category, Level, Signal


def sig(level: int, ts: float = 0.0, rule: str = "r", sensor: str = "a") -> Signal:
    return Signal(rule, sensor, "s", Level(level), Category.PROCESS, ts, ts, 1.0)


def tracker() -> AlertTracker:
    counter = itertools.count(1)
    return AlertTracker(lambda fp, ts: f"A{next(counter)}")


def kinds(events: list) -> list[str]:  # type: ignore[type-arg]
    return [e.kind.value for e in events]


def test_lifecycle() -> None:
    t = tracker()
    assert kinds(t.observe(sig(4), 0)) == ["opened"]
    assert kinds(t.observe(sig(4), 1)) == []  # same level: nothing new
    assert kinds(t.observe(sig(2), 2)) == ["escalated"]
    assert kinds(t.observe(sig(3), 3)) == ["de-escalated"]
    (resolved,) = t.observe(sig(0), 4)
    assert resolved.kind == EventKind.RESOLVED and resolved.alert.state == AlertState.RESOLVED
    assert resolved.alert.peak_level == Level.ORANGE and not resolved.alert.active
    assert kinds(t.observe(sig(4), 5)) == ["opened"]
    assert t.active["r|a"].id == "A2"


def test_closed_while_active_reopens_only_when_worse() -> None:
    t = tracker()
    (opened,) = t.observe(sig(3), 0)
    dispose(opened.alert, "op", ReasonCode.PROCESS_FLUCTUATION, "known", 1)
    assert t.observe(sig(3), 2) == [] and t.observe(sig(4), 3) == []
    (again,) = t.observe(sig(3), 4)  # from blue back to yellow is not worse than at closing
    assert again.kind == EventKind.OPENED and again.alert.id == "A2"


def test_operator_transitions() -> None:
    t = tracker()
    (opened,) = t.observe(sig(1), 0)
    alert = opened.alert
    ev = acknowledge(alert, "op-a", 5)
    assert ev.actor == "op-a" and alert.state == AlertState.ACKNOWLEDGED
    with pytest.raises(AlertStateError):
        acknowledge(alert, "op-b", 6)
    with pytest.raises(AlertStateError):
        dispose(alert, "op-a", ReasonCode.TEST, "  ", 7)
    dispose(alert, "op-a", ReasonCode.TEST, "drill", 7)
    assert alert.state == AlertState.CLOSED and alert.closed_by == "op-a"
    with pytest.raises(AlertStateError):
        dispose(alert, "op-a", ReasonCode.TEST, "again", 8)


@given(st.lists(st.integers(0, 4), max_size=40))
def test_one_active_alert_per_fingerprint_tracks_the_level(levels: list[int]) -> None:
    t = tracker()
    opened = 0
    previous = 0
    for i, level in enumerate(levels):
        opened += sum(e.kind == EventKind.OPENED for e in t.observe(sig(level, i), i))
        active = t.active.get("r|a")
        assert (active is not None) == (level != 0)
        if active is not None:
            assert active.level == Level(level)
        previous = level
    starts = sum(1 for a, b in zip([0, *levels], levels, strict=False) if a == 0 and b != 0)
    assert opened == starts and previous == (levels[-1] if levels else 0)


def test_sensor_in_fault_marks_its_process_alerts_suspect() -> None:
    t = tracker()
    (process,) = t.observe(sig(3), 0)
    assert not process.alert.suspect
    health = Signal("range", "a", "s", Level(3), Category.SENSOR_HEALTH, 1, 1)
    events = t.observe(health, 1)
    assert [e.kind for e in events] == [EventKind.OPENED, EventKind.SUSPECT]
    assert process.alert.suspect
    # a new process alert of a sensor in fault is suspect from the start
    (other,) = t.observe(sig(2, rule="r2"), 2)
    assert other.alert.suspect
    # another sensor is not affected
    (clean,) = t.observe(sig(2, sensor="b"), 3)
    assert not clean.alert.suspect
