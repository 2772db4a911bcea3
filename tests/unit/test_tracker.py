"""Alert tracker: one alert per fingerprint through its life; operator transitions."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.errors import AlertStateError, ConditionActiveError
from alerts.model import AlertState, EventKind, ReasonCode
from alerts.tracker import AlertTracker
from alerts.workflow import acknowledge, dispose
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


def test_a_close_while_active_is_refused_unless_forced() -> None:
    t = tracker()
    signal = Signal("r", "a", "s", Level(3), Category.PROCESS, 0, 0, 30.0, {"threshold": 25.0})
    (opened,) = t.observe(signal, 0)
    with pytest.raises(ConditionActiveError) as refused:
        dispose(opened.alert, "op", ReasonCode.PROCESS_FLUCTUATION, "known", 1)
    assert "30.0" in str(refused.value) and "set-point 25" in str(refused.value)
    with pytest.raises(AlertStateError):  # force needs a reason
        dispose(opened.alert, "op", ReasonCode.PROCESS_FLUCTUATION, "known", 1, force=True)
    closed = dispose(
        opened.alert, "op", ReasonCode.PROCESS_FLUCTUATION, "known", 1, force=True,
        force_reason="venting through the flare",
    )  # fmt: skip
    assert closed.detail["forced"] and closed.detail["force_reason"] == "venting through the flare"
    assert closed.detail["value"] == 30.0 and closed.detail["set_point"] == 25.0
    assert opened.alert.state == AlertState.OPEN  # the earlier snapshot is unchanged


def test_worse_after_a_forced_close_is_a_new_alert_and_ends_the_old_one() -> None:
    t = tracker()
    (opened,) = t.observe(sig(3), 0)
    closed = dispose(
        opened.alert, "op", ReasonCode.PROCESS_FLUCTUATION, "known", 1, force=True,
        force_reason="checked",
    ).alert  # fmt: skip
    t.apply(closed)
    # the same or a lower level is the condition the operator closed
    assert t.observe(sig(3), 2) == [] and t.observe(sig(4), 3) == [] and t.observe(sig(3), 4) == []
    superseded, again = t.observe(sig(1), 5)
    assert superseded.kind == EventKind.SUPERSEDED and not superseded.alert.active
    assert superseded.alert.id == "A1" and superseded.detail["by"] == "A2"
    assert again.kind == EventKind.OPENED and again.alert.level == Level.RED
    assert t.active["r|a"].id == "A2"


def test_cleared_unacknowledged_alert_waits_until_acknowledged() -> None:
    t = tracker()
    (opened,) = t.observe(sig(1), 0)
    (cleared,) = t.observe(sig(0), 1)
    assert cleared.alert.waiting and cleared.alert.isa_state == "rtn_unack"
    assert "A1" in t.waiting and "r|a" not in t.active
    acked = acknowledge(cleared.alert, "op", 2)
    t.apply(acked.alert)
    assert "A1" not in t.waiting and acked.alert.isa_state == "normal"
    assert opened.alert.isa_state == "unack_active"


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
    assert events[1].alert.suspect and not process.alert.suspect  # a new snapshot
    assert t.active["r|a"].suspect
    # a new process alert of a sensor in fault is suspect from the start
    (other,) = t.observe(sig(2, rule="r2"), 2)
    assert other.alert.suspect
    # another sensor is not affected
    (clean,) = t.observe(sig(2, sensor="b"), 3)
    assert not clean.alert.suspect
