"""The disposal loop after acknowledgement (DOMAIN.md §3): disposing (处置中), review (复核),
comments and assignment.  Pure: each returns the event that records who did what."""

from __future__ import annotations

from alerts.errors import AlertStateError
from alerts.model import Alert, AlertEvent, AlertState, EventKind


def _event(
    kind: EventKind, alert: Alert, actor: str, now: float, detail: dict[str, object]
) -> AlertEvent:
    alert.updated_at = now
    return AlertEvent(
        kind,
        alert,
        alert.level,
        alert.level,
        now,
        now,
        actor=actor,
        detail={k: v for k, v in detail.items() if v is not None},
    )


def start_disposal(alert: Alert, actor: str, now: float, note: str | None = None) -> AlertEvent:
    if alert.state != AlertState.ACKNOWLEDGED and not (
        alert.state == AlertState.RESOLVED and alert.acked_at is not None
    ):
        raise AlertStateError(
            f"alert {alert.id} is {alert.state}; acknowledge it first",
            alert_id=alert.id,
            state=alert.state,
        )
    alert.state = AlertState.DISPOSING
    return _event(EventKind.DISPOSING, alert, actor, now, {"note": note})


def review(alert: Alert, actor: str, now: float, note: str | None = None) -> AlertEvent:
    if alert.state != AlertState.CLOSED:
        raise AlertStateError(
            f"alert {alert.id} is {alert.state}; only closed alerts are reviewed",
            alert_id=alert.id,
            state=alert.state,
        )
    if alert.closed_by == actor:
        raise AlertStateError(
            "the review needs someone other than who closed the alert",
            alert_id=alert.id,
            state=alert.state,
        )
    alert.state = AlertState.REVIEWED
    alert.reviewed_at, alert.reviewed_by = now, actor
    return _event(EventKind.REVIEWED, alert, actor, now, {"note": note})


def comment(alert: Alert, actor: str, now: float, text: str) -> AlertEvent:
    if not text.strip():
        raise AlertStateError("a comment needs text", alert_id=alert.id, state=alert.state)
    return _event(EventKind.COMMENTED, alert, actor, now, {"text": text})


def assign(alert: Alert, actor: str, now: float, assignee: str) -> AlertEvent:
    if alert.state in (AlertState.CLOSED, AlertState.REVIEWED):
        raise AlertStateError(
            f"alert {alert.id} is {alert.state}", alert_id=alert.id, state=alert.state
        )
    alert.assignee = assignee
    return _event(EventKind.ASSIGNED, alert, actor, now, {"assignee": assignee})
