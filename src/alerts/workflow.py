"""The operators' side of the lifecycle (DOMAIN.md §3): acknowledge (签收), disposing (处置中),
close (消警) with a reason code, review (复核), comments, assignment and shelving.

Pure: each function takes the alert as it is and returns the event of the transition, whose
``alert`` is the new value.  Nothing is mutated; the caller stores the event and only then
makes the new value current (``monitor.operations``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from alerts.errors import AlertStateError, ConditionActiveError
from alerts.model import Alert, AlertEvent, AlertState, EventKind, ReasonCode


def _event(
    kind: EventKind, before: Alert, after: Alert, actor: str, now: float, detail: dict[str, Any]
) -> AlertEvent:
    return AlertEvent(
        kind,
        replace(after, updated_at=now),
        after.level,
        before.level,
        now,
        now,
        actor=actor,
        detail={k: v for k, v in detail.items() if v is not None},
    )


def _refuse(alert: Alert, message: str) -> AlertStateError:
    return AlertStateError(message, alert_id=alert.id, state=alert.state)


def acknowledge(alert: Alert, actor: str, now: float, note: str | None = None) -> AlertEvent:
    """签收.  Allowed once, on an alert nobody has acknowledged or closed, active or cleared
    (suppressed ones too: an operator may take in what a faulty sensor raised)."""
    if alert.acked_at is not None or alert.done:
        raise _refuse(alert, f"alert {alert.id} is {alert.state} and cannot be acknowledged")
    state = AlertState.ACKNOWLEDGED if alert.state == AlertState.OPEN else alert.state
    after = replace(alert, state=state, acked_at=now, acked_by=actor)
    return _event(EventKind.ACKNOWLEDGED, alert, after, actor, now, {"note": note})


def start_disposal(alert: Alert, actor: str, now: float, note: str | None = None) -> AlertEvent:
    if alert.acked_at is None or alert.state not in (AlertState.ACKNOWLEDGED, AlertState.RESOLVED):
        raise _refuse(alert, f"alert {alert.id} is {alert.state}; acknowledge it first")
    after = replace(alert, state=AlertState.DISPOSING)
    return _event(EventKind.DISPOSING, alert, after, actor, now, {"note": note})


def set_point(alert: Alert) -> float | None:
    """The set-point the alert's rule judged against, when its evidence names one."""
    found = alert.evidence.get("threshold")
    return float(found) if isinstance(found, int | float) else None


def dispose(
    alert: Alert,
    actor: str,
    reason: ReasonCode,
    note: str,
    now: float,
    *,
    force: bool = False,
    force_reason: str | None = None,
) -> AlertEvent:
    """消警: close the alert with a reason code and a note.

    While the condition still holds the close is refused (``ConditionActiveError`` names the
    value and the set-point), unless ``force`` with a ``force_reason``; the forced close and
    its reason are kept in the history.  A forced-closed alert stays active until its condition
    clears; a worse level after it is a new alert (``AlertTracker``)."""
    if alert.done:
        raise _refuse(alert, f"alert {alert.id} is already closed")
    if not note.strip():
        raise _refuse(alert, "a note is required to dispose an alert")
    if alert.active and not force:
        raise ConditionActiveError(alert, set_point(alert))
    if force and not (force_reason or "").strip():
        raise _refuse(alert, "a forced close needs a force_reason")
    after = replace(
        alert,
        state=AlertState.CLOSED,
        closed_at=now,
        closed_by=actor,
        reason_code=reason,
        note=note,
    )
    detail: dict[str, Any] = {"reason_code": reason.value, "note": note}
    if alert.active:
        detail |= {"forced": True, "force_reason": force_reason, "value": alert.value}
        detail["set_point"] = set_point(alert)
    return _event(EventKind.DISPOSED, alert, after, actor, now, detail)


def review(alert: Alert, actor: str, now: float, note: str | None = None) -> AlertEvent:
    if alert.state != AlertState.CLOSED:
        raise _refuse(alert, f"alert {alert.id} is {alert.state}; only closed alerts are reviewed")
    if alert.closed_by == actor:
        raise _refuse(alert, "the review needs someone other than who closed the alert")
    after = replace(alert, state=AlertState.REVIEWED, reviewed_at=now, reviewed_by=actor)
    return _event(EventKind.REVIEWED, alert, after, actor, now, {"note": note})


def comment(alert: Alert, actor: str, now: float, text: str) -> AlertEvent:
    if not text.strip():
        raise _refuse(alert, "a comment needs text")
    return _event(EventKind.COMMENTED, alert, alert, actor, now, {"text": text})


def assign(alert: Alert, actor: str, now: float, assignee: str) -> AlertEvent:
    if alert.done:
        raise _refuse(alert, f"alert {alert.id} is {alert.state}")
    after = replace(alert, assignee=assignee)
    return _event(EventKind.ASSIGNED, alert, after, actor, now, {"assignee": assignee})


def shelve(alert: Alert, actor: str, now: float, until: float, reason: str) -> AlertEvent:
    """Hold back the alert's notifications until ``until``; it stays true and listed."""
    if alert.done:
        raise _refuse(alert, f"alert {alert.id} is {alert.state}; nothing to shelve")
    if until <= now:
        raise _refuse(alert, "until must be in the future")
    if not reason.strip():
        raise _refuse(alert, "shelving needs a reason")
    return _event(EventKind.SHELVED, alert, alert, actor, now, {"until": until, "reason": reason})
