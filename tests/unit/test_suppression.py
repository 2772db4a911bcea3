"""A sensor in a suppressing fault does not page with its readings (``alerts.suppression``).

The rules are modelled as the engine runs them (``test_holdback.Rules``): each (rule, sensor)
has a level and signals only its changes; a restart re-arms each rule from the store.  ``s`` is
a wander-like health rule whose fault suppresses, ``h`` a spike-like one that holds reds back,
``g`` a range-like one that does neither.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts import workflow
from alerts.history import HistoryEvent, replay
from alerts.holdback import wanted_level
from alerts.model import Alert, EventKind
from alerts.noise import NoiseControl
from alerts.sla import SlaPolicy
from alerts.suppression import SUPPRESSES, faults
from alerts.tracker import AlertTracker
from monitor.model import Category, Level, Signal
from tests.unit.test_holdback import SENSORS, Rules, Step, in_store, restarted, run


class Suppressing(Rules):
    def judge(self, i: int, step: Step) -> Signal | None:
        signal = super().judge(i, step)
        if signal is None or signal.rule != "s" or not signal.level:
            return signal
        return Signal(
            signal.rule, signal.sensor, signal.site, signal.level, signal.category,
            signal.ts, signal.received, signal.value, {SUPPRESSES: True},
        )  # fmt: skip


steps = st.lists(
    st.tuples(
        st.sampled_from("pppshg"), st.sampled_from(SENSORS), st.sampled_from((0, 1, 2, 3, 4, 4))
    ),
    min_size=4,
    max_size=30,
)


@settings(max_examples=500)
@given(steps)
def test_an_alert_is_suppressed_exactly_when_it_came_below_red_in_a_suppressing_fault(
    stream: list[Step],
) -> None:
    tracker, rules = AlertTracker(), Suppressing()
    shown: set[str] = set()  # alert ids that were on the operators' list at some time
    for i, step in enumerate(stream):
        signal = rules.judge(i, step)
        if signal is None:
            continue
        for event in tracker.observe(signal, float(i)):
            if not event.alert.suppressed:
                shown.add(event.alert.id)
        active = list(tracker.active.values())
        for sensor in SENSORS:
            alert = tracker.active.get(f"p|{sensor}")
            if alert is None:
                continue
            if alert.suppressed:
                # never shown, below red, and its sensor still in a suppressing fault
                assert alert.id not in shown
                assert alert.level > Level.RED and wanted_level(alert) > Level.RED
                assert faults(active, sensor)
                assert not alert.waiting
            elif not faults(active, sensor) or alert.level == Level.RED:
                pass  # shown: no suppressing fault, or a red
            else:
                # shown while in fault: it was shown before the fault came (and is suspect)
                assert alert.suspect


@settings(max_examples=500)
@given(steps, st.data())
def test_a_restart_records_what_a_clean_run_records(
    stream: list[Step], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(stream)), label="stopped after")
    assert restarted(stream, cut, lambda a: int(wanted_level(a)), Suppressing)


@settings(max_examples=300)
@given(steps)
def test_the_history_rebuilds_the_suppressed_flag(stream: list[Step]) -> None:
    events = run(AlertTracker(), Suppressing(), stream)
    for alert in in_store(events):
        mine = [
            HistoryEvent(e.kind.value, int(e.level), e.actor, e.detail)
            for e in events
            if e.alert.id == alert.id
        ]
        assert replay(mine)["suppressed"] == alert.suppressed


def test_a_wandering_piezometer_pages_once_with_its_health_alert() -> None:
    tracker, rules = AlertTracker(), Suppressing()
    events = run(tracker, rules, [("s", "w1", 4), ("p", "w1", 4), ("p", "w1", 0), ("p", "w1", 3)])
    opened = [e for e in events if e.kind == EventKind.OPENED]
    assert [(e.alert.rule, e.alert.suppressed) for e in opened] == [
        ("s", False),
        ("p", True),
        ("p", True),
    ]
    assert all(not a.waiting for a in tracker.waiting.values())  # cleared: not on the list
    noise = NoiseControl(started=0.0)
    active = list(tracker.active.values())
    decision = noise.decide(opened[-1], 10.0, active, lambda s: None, lambda s: None)
    assert decision == (False, "suppressed by design: its sensor is in fault (s)")


def test_the_fault_clearing_shows_a_condition_that_still_holds() -> None:
    tracker, rules = AlertTracker(), Suppressing()
    events = run(tracker, rules, [("s", "w1", 4), ("p", "w1", 3), ("s", "w1", 0)])
    assert [(e.kind, e.alert.rule) for e in events[-2:]] == [
        (EventKind.RESOLVED, "s"),
        (EventKind.UNSUPPRESSED, "p"),
    ]
    shown = events[-1]
    assert not shown.alert.suppressed and shown.alert.waiting
    assert shown.detail["reason"] == "its sensor's fault cleared"
    noise = NoiseControl(started=0.0)
    assert noise.decide(shown, 10.0, [shown.alert], lambda s: None, lambda s: None)[0]


def test_a_red_is_never_suppressed() -> None:
    tracker, rules = AlertTracker(), Suppressing()
    events = run(tracker, rules, [("s", "w1", 4), ("p", "w1", 3), ("p", "w1", 1)])
    assert events[-1].kind == EventKind.ESCALATED and events[-1].level == Level.RED
    assert not events[-1].alert.suppressed and events[-1].alert.suspect
    # nor a red held back by another fault of the same sensor: it holds orange, shown
    tracker, rules = AlertTracker(), Suppressing()
    events = run(tracker, rules, [("s", "w1", 4), ("h", "w1", 4), ("p", "w1", 1)])
    assert events[-1].level == Level.ORANGE and not events[-1].alert.suppressed


def test_an_alert_shown_before_the_fault_stays_shown() -> None:
    tracker, rules = AlertTracker(), Suppressing()
    events = run(tracker, rules, [("p", "w1", 4), ("s", "w1", 4), ("p", "w1", 3)])
    assert events[-1].kind == EventKind.ESCALATED
    assert not events[-1].alert.suppressed and events[-1].alert.suspect


def test_only_its_own_sensor_is_suppressed() -> None:
    tracker, rules = AlertTracker(), Suppressing()
    events = run(tracker, rules, [("s", "w1", 4), ("p", "w2", 4), ("g", "w2", 4), ("p", "w1", 4)])
    by_sensor = {e.alert.sensor: e.alert for e in events if e.alert.rule == "p"}
    assert not by_sensor["w2"].suppressed and by_sensor["w1"].suppressed


def _alert(suppressed: bool) -> Alert:
    return Alert(
        id="a", fingerprint="p|w1", rule="p", sensor="w1", site="z1",
        category=Category.PROCESS, level=Level.BLUE, peak_level=Level.BLUE,
        opened_at=0.0, updated_at=0.0, suppressed=suppressed, raised_at=0.0,
    )  # fmt: skip


def test_a_suppressed_alert_is_not_waiting() -> None:
    assert _alert(False).waiting and not _alert(True).waiting
    assert _alert(True).isa_state == "suppressed"


def test_a_suppressed_alert_runs_no_sla_timer() -> None:
    assert SlaPolicy().due_tier(_alert(True), 1e6) is None
    assert SlaPolicy().due_tier(_alert(False), 1e6) is not None


def test_an_operator_may_handle_a_suppressed_alert_and_it_stays_handled() -> None:
    """Acknowledged while suppressed (an operator looked at the health alert's sensor), the
    alert is shown acknowledged when the fault clears: not waiting, its dispose timer running."""
    tracker, rules = AlertTracker(), Suppressing()
    run(tracker, rules, [("s", "w1", 4), ("p", "w1", 3)])
    suppressed = tracker.active["p|w1"]
    acked = workflow.acknowledge(suppressed, "op-li", 3.0)
    tracker.apply(acked.alert)
    assert acked.alert.suppressed and not acked.alert.waiting
    events = run(tracker, rules, [("s", "w1", 4), ("p", "w1", 3), ("s", "w1", 0)], start=2)
    shown = events[-1].alert
    assert events[-1].kind == EventKind.UNSUPPRESSED and shown.acked_by == "op-li"
    assert not shown.waiting and not shown.suppressed
    assert SlaPolicy().due_tier(shown, 1e6) is not None  # the dispose timer runs now
