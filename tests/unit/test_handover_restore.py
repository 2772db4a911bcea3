"""What a new partition owner's tracker starts from (``monitor.handover.to_restore``): killed
after a snapshot and after storing more, then replaying from the snapshot, the events stored
over both passes are exactly those of a run that was never killed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.model import Alert, AlertEvent, ReasonCode
from alerts.tracker import AlertTracker
from alerts.workflow import acknowledge, dispose
from monitor.handover import take_over, to_restore
from monitor.model import Category, Level, Signal

Step = tuple[str, int]  # (rule, level): "h" is the sensor-health rule, the others process rules


def signal(i: int, step: Step) -> Signal:
    rule, level = step
    category = Category.SENSOR_HEALTH if rule == "h" else Category.PROCESS
    return Signal(rule, "w1", "z1", Level(level), category, float(i), float(i), 1.0)


def run(tracker: AlertTracker, steps: list[Step], start: int = 0) -> list[AlertEvent]:
    return [e for i, s in enumerate(steps[start:], start) for e in tracker.observe(signal(i, s), i)]


def stored(events: list[AlertEvent]) -> set[tuple[str, str, int, float]]:
    return {(e.alert.id, e.kind.value, int(e.level), e.ts) for e in events}


def latest(events: list[AlertEvent]) -> list[Alert]:
    return list({e.alert.id: e.alert for e in events}.values())


steps = st.lists(
    st.tuples(st.sampled_from("pqh"), st.sampled_from(range(5))), min_size=4, max_size=24
)


@settings(max_examples=400)
@given(steps, st.data())
def test_replay_from_a_snapshot_records_what_a_clean_run_records(
    stream: list[Step], data: st.DataObject
) -> None:
    clean = run(AlertTracker(), stream)
    cut = data.draw(st.integers(0, len(stream)), label="snapshot after")
    killed = data.draw(st.integers(cut, len(stream)), label="killed after")
    first = AlertTracker()
    before = run(first, stream[:cut])
    held = list(first.active.values())  # the snapshot's open alerts
    after = run(first, stream[:killed], cut)
    in_store = latest(before + after)
    waiting = [a for a in in_store if not a.active and a.waiting]
    second = AlertTracker()  # z1 has a snapshot: none of the store's active alerts is taken
    second.restore(to_restore(held, [], waiting, {a.id: a for a in in_store}))
    replayed = run(second, stream, cut)
    assert stored(replayed) == stored([e for e in clean if e.ts >= cut])  # as if never killed
    assert stored(before + after + replayed) == stored(clean)


@settings(max_examples=300)
@given(steps, st.data())
def test_a_new_owner_that_loaded_the_store_at_start_up_replays_as_a_clean_run(
    stream: list[Step], data: st.DataObject
) -> None:
    """A processor loads every active alert of the store when it starts, before it is given
    any partition; taking one over must forget them (``take_over``): an alert opened after the
    snapshot, met at its stored level, would make the replay record transitions from it (the
    kill loops' extra ``de-escalated`` events)."""
    clean = run(AlertTracker(), stream)
    cut = data.draw(st.integers(0, len(stream)), label="snapshot after")
    killed = data.draw(st.integers(cut, len(stream)), label="killed after")
    first = AlertTracker()
    before = run(first, stream[:cut])
    held = list(first.active.values())
    after = run(first, stream[:killed], cut)
    in_store = latest(before + after)
    waiting = [a for a in in_store if not a.active and a.waiting]
    second = AlertTracker()
    second.restore([a for a in in_store if a.active] + waiting)  # what start-up loads
    take_over(second, {"z1"}, to_restore(held, [], waiting, {a.id: a for a in in_store}))
    replayed = run(second, stream, cut)
    assert stored(before + after + replayed) == stored(clean)


def test_a_cleared_alert_in_the_store_does_not_replace_the_snapshot_version() -> None:
    """Red at the snapshot, cleared since from yellow: the replay goes on from red, as the
    clean run did (down to orange, then yellow), not from yellow (up to orange)."""
    stream: list[Step] = [("p", 1), ("p", 2), ("p", 3), ("p", 0)]
    first = AlertTracker()
    run(first, stream[:1])
    held = list(first.active.values())
    waiting = [e.alert for e in run(first, stream, 1)][-1:]
    second = AlertTracker()
    second.restore(to_restore(held, [], waiting, {a.id: a for a in waiting}))
    assert [e.kind.value for e in run(second, stream, 1)] == [
        "de-escalated",
        "de-escalated",
        "resolved",
    ]


def test_an_alert_closed_after_the_snapshot_stays_closed_and_a_red_opens_a_new_one() -> None:
    """Yellow at the snapshot; an operator closes it while the gas is still there (stored);
    the processor dies.  In the replay the leak goes red: a new alert, as live (the closed
    one is superseded), not an escalation of the closed one that nobody would see."""
    first = AlertTracker()
    run(first, [("p", 3)])
    held = list(first.active.values())
    acked = acknowledge(held[0], "op", 1.0).alert
    closed = dispose(
        acked, "op", ReasonCode.PROCESS_FLUCTUATION, "early", 2.0, force=True, force_reason="t"
    )
    second = AlertTracker()
    second.restore(to_restore(held, [], [], {closed.alert.id: closed.alert}))
    replayed = run(second, [("p", 3), ("p", 1)], 1)
    assert [e.kind.value for e in replayed] == ["superseded", "opened"]
    assert replayed[1].alert.id != held[0].id and replayed[1].level == Level.RED
    assert replayed[0].alert.id == held[0].id and replayed[0].alert.done
