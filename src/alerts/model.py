"""Alert records and events.

An ``Alert`` is an immutable value: every transition (a new level, an acknowledgement, a close)
returns a new ``Alert``, and every ``AlertEvent`` holds the alert as it was right after that
transition.  The store, the live stream, the notifications and the metrics render that
snapshot, so an event never shows a later state than the one it reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from monitor.clock import to_datetime
from monitor.model import Category, Level


class AlertState(StrEnum):
    """Workflow state.  Whether the condition still holds is the separate ``active`` flag."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"  # 签收
    DISPOSING = "disposing"  # 处置中
    RESOLVED = "resolved"  # condition cleared before anyone closed the alert (see ``waiting``)
    CLOSED = "closed"  # disposed (消警) by an operator with a reason code
    REVIEWED = "reviewed"  # 复核, after closing


class EventKind(StrEnum):
    OPENED = "opened"
    ESCALATED = "escalated"
    DEESCALATED = "de-escalated"
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"
    DISPOSED = "disposed"
    SUSPECT = "marked-suspect"
    DISPOSING = "disposing"
    REVIEWED = "reviewed"
    COMMENTED = "commented"
    ASSIGNED = "assigned"
    OVERDUE = "overdue"  # an SLA limit passed: escalated up the hierarchy
    SUPERSEDED = "superseded"  # closed while active, then worse: a new alert takes over
    SHELVED = "shelved"  # notifications held back by an operator until an expiry
    HELD_BACK = "held-back"  # a red from a sensor in fault held at orange (alerts.holdback)
    UNSUPPRESSED = "unsuppressed"  # shown after its sensor's fault (alerts.suppression)


class ReasonCode(StrEnum):
    """Disposal reason codes (DOMAIN.md §3)."""

    REAL_HAZARD_HANDLED = "real_hazard_handled"
    PROCESS_FLUCTUATION = "process_fluctuation"
    MAINTENANCE = "maintenance_calibration"
    INSTRUMENT_FAULT = "instrument_fault"
    FALSE_ALARM = "false_alarm"
    TEST = "test"


DONE = (AlertState.CLOSED, AlertState.REVIEWED)
PEOPLE_STATES = (AlertState.ACKNOWLEDGED, AlertState.DISPOSING, *DONE)  # set by an operator


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    fingerprint: str
    rule: str
    sensor: str | None
    site: str
    category: Category
    level: Level
    peak_level: Level
    opened_at: float
    updated_at: float
    state: AlertState = AlertState.OPEN
    active: bool = True
    value: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    retrospective: bool = False
    resolved_at: float | None = None
    acked_at: float | None = None
    acked_by: str | None = None
    closed_at: float | None = None
    closed_by: str | None = None
    reason_code: ReasonCode | None = None
    note: str | None = None
    suspect: bool = False  # its sensor is in fault (a sensor-health alert is active)
    # suppressed by design: it came below red while its sensor was in a fault that makes the
    # readings meaningless, and has not been shown since (alerts.suppression)
    suppressed: bool = False
    last_ts: float | None = None  # event time of the last transition (restores rule state)
    # condition changes so far (opened, level, suspect, cleared; not people's actions): a
    # replay's stale version of a stored alert has fewer and does not overwrite it
    transitions: int = 0
    raised_at: float | None = None  # processing time it was raised (SLA timers start here)
    tier: int = 0  # escalation tier: 0 enterprise, 1 district regulator, 2 city
    assignee: str | None = None
    reviewed_at: float | None = None
    reviewed_by: str | None = None

    @property
    def done(self) -> bool:
        """Closed (消警) or reviewed (复核): nothing more is asked of people."""
        return self.state in DONE

    @property
    def waiting(self) -> bool:
        """On the operators' list: nobody has acknowledged it and nobody has closed it, whether
        or not its condition still holds (ISA-18.2 "unacknowledged" and "returned to normal
        unacknowledged").  A suppressed alert is not on the list."""
        return self.acked_at is None and not self.done and not self.suppressed

    @property
    def isa_state(self) -> str:
        """The ISA-18.2 / IEC 62682 alarm state: condition crossed with acknowledgement, or
        suppressed by design."""
        if self.suppressed:
            return "suppressed"
        if self.active:
            return "unack_active" if self.waiting else "ack_active"
        return "rtn_unack" if self.waiting else "normal"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One transition of one alert; ``alert`` is the alert as it was right after it."""

    kind: EventKind
    alert: Alert
    level: Level
    previous_level: Level | None
    ts: float  # event time of the reading (or tick) that caused it
    at: float  # processing time
    received: float | None = None  # when the triggering reading arrived
    actor: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def with_people(alert: Alert, stored: Alert) -> Alert:
    """``alert``'s condition (level, activity, evidence) with what people did to it as
    ``stored`` says: acknowledgement, disposal, review, assignment and the SLA tier.  For an
    alert restored from an older snapshot of the rule state: the replay that follows re-creates
    the condition, but not the operators' actions."""
    state = stored.state if stored.state in PEOPLE_STATES else alert.state
    if stored.acked_at is not None and state == AlertState.OPEN:
        state = AlertState.ACKNOWLEDGED
    return replace(
        alert,
        state=state,
        acked_at=stored.acked_at,
        acked_by=stored.acked_by,
        closed_at=stored.closed_at,
        closed_by=stored.closed_by,
        reason_code=stored.reason_code,
        note=stored.note,
        tier=max(alert.tier, stored.tier),
        assignee=stored.assignee,
        reviewed_at=stored.reviewed_at,
        reviewed_by=stored.reviewed_by,
    )


def alert_to_dict(alert: Alert) -> dict[str, Any]:
    """A JSON-ready copy (state snapshots)."""
    out = {f: getattr(alert, f) for f in Alert.__dataclass_fields__}
    out["category"], out["level"], out["peak_level"] = (
        alert.category.value,
        int(alert.level),
        int(alert.peak_level),
    )
    out["state"] = alert.state.value
    out["reason_code"] = alert.reason_code.value if alert.reason_code else None
    return out


def alert_view(alert: Alert) -> dict[str, Any]:
    """What every renderer (the SSE stream, the notifications) shows of an event's snapshot."""
    return {
        "id": alert.id,
        "fingerprint": alert.fingerprint,
        "rule": alert.rule,
        "sensor": alert.sensor,
        "site": alert.site,
        "level": int(alert.level),
        "peak_level": int(alert.peak_level),
        "state": alert.state.value,
        "isa_state": alert.isa_state,
        "waiting": alert.waiting,
        "category": alert.category.value,
        "active": alert.active,
        "suspect": alert.suspect,
        "suppressed": alert.suppressed,
        "value": alert.value,
        "tier": alert.tier,
        "evidence": alert.evidence,
        "opened_at": to_datetime(alert.opened_at).isoformat(),
        "updated_at": to_datetime(alert.updated_at).isoformat(),
        "raised_at": _time(alert.raised_at),
        "acked_at": _time(alert.acked_at),
        "acked_by": alert.acked_by,
        "assignee": alert.assignee,
    }


def _time(at: float | None) -> str | None:
    return None if at is None else to_datetime(at).isoformat()


def alert_from_dict(data: dict[str, Any]) -> Alert:
    fields = dict(data)
    fields["category"] = Category(fields["category"])
    fields["level"], fields["peak_level"] = Level(fields["level"]), Level(fields["peak_level"])
    fields["state"] = AlertState(fields["state"])
    fields["reason_code"] = ReasonCode(fields["reason_code"]) if fields["reason_code"] else None
    return Alert(**fields)
