"""SLA escalation up the hierarchy and the disposal loop, on a manual clock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from alerts import workflow
from alerts.errors import AlertStateError
from alerts.model import AlertState, EventKind, ReasonCode
from alerts.sla import SlaPolicy, escalate
from alerts.tracker import AlertTracker
from alerts.workflow import acknowledge, dispose
from monitor.clock import ManualClock
from monitor.model import Category, Level, Signal


def red(clock: ManualClock) -> AlertTracker:
    tracker = AlertTracker()
    tracker.observe(
        Signal("r", "a", "s", Level.RED, Category.PROCESS, clock.now(), clock.now()), clock.now()
    )
    return tracker


def test_unacknowledged_red_escalates_at_its_limit_and_ack_stops_it() -> None:
    clock, policy = ManualClock(), SlaPolicy()
    tracker = red(clock)
    alert = next(iter(tracker.active.values()))
    clock.advance(299.9)
    assert escalate([alert], clock.now(), policy) == []  # just short of 5 minutes
    clock.advance(0.1)
    (event,) = escalate([alert], clock.now(), policy)
    assert event.kind == EventKind.OVERDUE and event.detail["tier"] == "district"
    assert event.detail["missed"] == "acknowledge" and alert.tier == 0  # a new value
    alert = acknowledge(event.alert, "op", clock.now()).alert
    clock.advance(29 * 60)
    assert escalate([alert], clock.now(), policy) == []  # acked: the ack timer stopped
    clock.advance(61)  # 30 min after the ack without disposal: dispose limit passed
    (late,) = escalate([alert], clock.now(), policy)
    assert late.detail == {"tier": "city", "missed": "dispose", "limit_s": 1800.0}
    alert = dispose(
        late.alert,
        "op",
        ReasonCode.REAL_HAZARD_HANDLED,
        "valve closed",
        clock.now(),
        force=True,
        force_reason="isolated; gas still venting",
    ).alert
    clock.advance(10_000)
    assert escalate([alert], clock.now(), policy) == []


def test_each_tier_is_an_event_even_when_several_pass_at_once() -> None:
    clock = ManualClock()
    alert = next(iter(red(clock).active.values()))
    clock.advance(3 * 300)
    events = escalate([alert], clock.now(), SlaPolicy())
    assert [e.detail["tier"] for e in events] == ["district", "city"]


def test_disposal_loop_with_review_by_someone_else() -> None:
    clock = ManualClock()
    alert = next(iter(red(clock).active.values()))
    with pytest.raises(AlertStateError):
        workflow.start_disposal(alert, "op", clock.now())  # not acknowledged yet
    alert = acknowledge(alert, "op", clock.now()).alert
    alert = workflow.assign(alert, "lead", clock.now(), "team-3").alert
    alert = workflow.start_disposal(alert, "team-3", clock.now(), "crew on site").alert
    assert alert.state == AlertState.DISPOSING and alert.assignee == "team-3"
    alert = workflow.comment(alert, "team-3", clock.now(), "isolated the tank").alert
    alert = replace(alert, active=False)  # the condition cleared
    alert = dispose(
        alert, "team-3", ReasonCode.REAL_HAZARD_HANDLED, "leak fixed", clock.now()
    ).alert
    with pytest.raises(AlertStateError):
        workflow.review(alert, "team-3", clock.now())  # not by who closed it
    event = workflow.review(alert, "chief", clock.now(), "ok")
    assert event.alert.state == AlertState.REVIEWED and event.actor == "chief"
