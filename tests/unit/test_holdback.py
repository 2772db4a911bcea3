"""A red from a sensor in fault is held at orange until corroborated (``alerts.holdback``).

The rules are modelled as the engine runs them: each (rule, sensor) has a level and signals
only its changes; a restart re-arms each rule from the store's active alerts.  A restarted run
must record what a run that was never stopped records, so the level a rule is re-armed at is
the one it gave (the held-back red), not the alert's orange.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.holdback import HELD, corroborates, faults, wanted_level
from alerts.model import Alert, AlertEvent, EventKind
from alerts.tracker import AlertTracker
from monitor.model import Category, Level, Signal

SENSORS = ("w1", "w2")
# p: a process rule on every sensor; h: a spike-like health rule (its fault holds reds back);
# g: a range-like health rule (its fault does not)
Step = tuple[str, str, int]  # (rule, sensor, level the rule's readings reach)


class Rules:
    """Per (rule, sensor) the level each rule holds; a change is a signal."""

    def __init__(self) -> None:
        self.level: dict[tuple[str, str], int] = {}

    def rearm(self, active: list[Alert], level_of: Callable[[Alert], int]) -> None:
        for alert in active:
            assert alert.sensor is not None
            self.level[(alert.rule, alert.sensor)] = level_of(alert)

    def judge(self, i: int, step: Step) -> Signal | None:
        rule, sensor, level = step
        if self.level.get((rule, sensor), 0) == level:
            return None
        self.level[(rule, sensor)] = level
        category = Category.PROCESS if rule == "p" else Category.SENSOR_HEALTH
        evidence = {"holds_red": True} if rule == "h" and level else {}
        return Signal(rule, sensor, "z1", Level(level), category, float(i), float(i), 1.0, evidence)


def run(tracker: AlertTracker, rules: Rules, steps: list[Step], start: int = 0) -> list[AlertEvent]:
    out = []
    for i, step in enumerate(steps[start:], start):
        signal = rules.judge(i, step)
        if signal is not None:
            out += tracker.observe(signal, float(i))
    return out


def stored(events: list[AlertEvent]) -> set[tuple[str, str, int, float]]:
    return {(e.alert.id, e.kind.value, int(e.level), e.ts) for e in events}


def in_store(events: list[AlertEvent]) -> list[Alert]:
    return list({e.alert.id: e.alert for e in events}.values())


steps = st.lists(
    st.tuples(
        st.sampled_from("ppphg"), st.sampled_from(SENSORS), st.sampled_from((0, 1, 1, 2, 3, 4))
    ),
    min_size=4,
    max_size=30,
)


def restarted(
    stream: list[Step],
    cut: int,
    level_of: Callable[[Alert], int],
    rules_of: Callable[[], Rules] = Rules,
) -> bool:
    """Whether a run stopped after ``cut`` steps and started again from the store records
    what a clean run records (``rules_of``: the rules, new for each run)."""
    clean = run(AlertTracker(), rules_of(), stream)
    first = run(AlertTracker(), rules_of(), stream[:cut])
    alerts = in_store(first)
    active = [a for a in alerts if a.active]
    second, rules = AlertTracker(), rules_of()
    second.restore([*active, *(a for a in alerts if not a.active and a.waiting)])
    rules.rearm(active, level_of)
    return stored(first + run(second, rules, stream, cut)) == stored(clean)


@settings(max_examples=500)
@given(steps, st.data())
def test_a_restart_records_what_a_clean_run_records(
    stream: list[Step], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(stream)), label="stopped after")
    assert restarted(stream, cut, lambda a: int(wanted_level(a)))


def test_re_arming_at_the_alerts_level_would_not() -> None:
    stream: list[Step] = [("h", "w1", 4), ("p", "w1", 1), ("h", "w1", 0)]
    assert [e.kind for e in run(AlertTracker(), Rules(), stream)][-2:] == [
        EventKind.RESOLVED,
        EventKind.ESCALATED,  # the fault cleared: the red is released
    ]
    stream = [("h", "w1", 4), ("p", "w1", 1), ("p", "w1", 2), ("h", "w1", 0)]
    # re-armed at orange, the rule does not see its readings come down to orange, and the
    # fault's end releases a red nobody measured any more
    assert not restarted(stream, 2, lambda a: int(a.level))
    assert restarted(stream, 2, lambda a: int(wanted_level(a)))


@settings(max_examples=500)
@given(steps)
def test_a_red_is_held_exactly_while_its_sensor_is_in_fault_and_uncorroborated(
    stream: list[Step],
) -> None:
    tracker, rules = AlertTracker(), Rules()
    red_before_fault: set[str] = set()
    for i, step in enumerate(stream):
        signal = rules.judge(i, step)
        if signal is None:
            continue
        tracker.observe(signal, float(i))
        active = list(tracker.active.values())
        for sensor in SENSORS:
            alert = tracker.active.get(f"p|{sensor}")
            if alert is None:
                red_before_fault.discard(sensor)
                continue
            assert int(wanted_level(alert)) == rules.level[("p", sensor)]
            in_fault = bool(faults(active, sensor))
            corroborated = any(corroborates(a, "p", "z1", sensor) for a in active)
            if alert.level == Level.RED and not in_fault:
                red_before_fault.add(sensor)
            if HELD in alert.evidence:
                assert alert.level == Level.ORANGE and in_fault and not corroborated
            elif alert.level == Level.RED and in_fault:
                # red before its fault (it stays red, marked suspect) or corroborated
                assert (
                    sensor in red_before_fault
                    or "corroborated_by" in alert.evidence
                    or ("released" in alert.evidence)
                )
            else:
                assert alert.level == wanted_level(alert)


def test_a_range_fault_holds_nothing_back() -> None:
    tracker, rules = AlertTracker(), Rules()
    events = run(tracker, rules, [("g", "w1", 4), ("p", "w1", 1)])
    assert events[-1].kind == EventKind.OPENED and events[-1].level == Level.RED
    assert events[-1].alert.suspect  # its sensor is in fault all the same


def test_a_neighbour_at_orange_corroborates_the_red() -> None:
    tracker, rules = AlertTracker(), Rules()
    held = run(tracker, rules, [("h", "w1", 4), ("p", "w1", 1)])
    assert held[-1].level == Level.ORANGE and held[-1].alert.evidence[HELD]["faults"] == ["h"]
    events = run(tracker, rules, [("h", "w1", 4), ("p", "w1", 1), ("p", "w2", 2)], start=2)
    assert [(e.kind, e.alert.sensor, int(e.level)) for e in events] == [
        (EventKind.OPENED, "w2", 2),
        (EventKind.ESCALATED, "w1", 1),
    ]
    assert events[-1].alert.evidence["released"] == "corroborated by w2"
    # and a red that comes when a neighbour already agrees is not held at all
    tracker, rules = AlertTracker(), Rules()
    events = run(tracker, rules, [("p", "w2", 2), ("h", "w1", 4), ("p", "w1", 1)])
    assert events[-1].level == Level.RED and events[-1].alert.evidence["corroborated_by"] == "w2"


def test_the_rule_coming_down_while_held_is_recorded() -> None:
    tracker, rules = AlertTracker(), Rules()
    events = run(tracker, rules, [("p", "w1", 2), ("h", "w1", 4), ("p", "w1", 1), ("p", "w1", 2)])
    assert [(e.kind, int(e.level), e.previous_level) for e in events[-2:]] == [
        (EventKind.HELD_BACK, 2, Level.ORANGE),
        (EventKind.DEESCALATED, 2, Level.RED),  # from the red it held back
    ]
    assert HELD not in tracker.active["p|w1"].evidence
