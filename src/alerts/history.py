"""An alert's history is complete: replaying its events rebuilds its lifecycle.

``replay`` folds an alert's events (kind, level, ts, at, actor, detail: what the store keeps in
``alert_events``) into the lifecycle fields of the alert.  The result must equal the stored
alert; the property tests check it after every random interleaving of readings, operator
actions, ticks and restarts, so the history can be trusted as the audit trail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from alerts.model import AlertState, EventKind
from alerts.sla import TIERS

# the lifecycle fields replay rebuilds, as they are named on Alert and in the store
FIELDS = (
    "level",
    "peak_level",
    "state",
    "active",
    "suspect",
    "suppressed",
    "tier",
    "acked_by",
    "closed_by",
    "reason_code",
    "reviewed_by",
    "assignee",
)


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    kind: str
    level: int
    actor: str | None
    detail: dict[str, Any]


# the tracker's events (condition changes): each says whether the alert is suppressed after it
_CONDITION = {
    EventKind.OPENED, EventKind.ESCALATED, EventKind.DEESCALATED, EventKind.RESOLVED,
    EventKind.SUPERSEDED, EventKind.SUSPECT, EventKind.HELD_BACK, EventKind.UNSUPPRESSED,
}  # fmt: skip


def replay(events: Iterable[HistoryEvent]) -> dict[str, Any]:
    """The lifecycle fields after these events, oldest first (``FIELDS``)."""
    out: dict[str, Any] = {}
    for e in events:
        kind = EventKind(e.kind)
        if kind in _CONDITION:
            out["suppressed"] = bool(e.detail.get("suppressed"))
        if kind == EventKind.OPENED:
            out = dict.fromkeys(FIELDS) | {"suppressed": bool(e.detail.get("suppressed"))}
            out |= {"level": e.level, "peak_level": e.level, "state": AlertState.OPEN.value}
            out |= {"active": True, "suspect": bool(e.detail.get("suspect")), "tier": 0}
        elif kind in (EventKind.ESCALATED, EventKind.DEESCALATED):
            out["level"], out["peak_level"] = e.level, min(out["peak_level"], e.level)
        elif kind == EventKind.RESOLVED:
            out["active"] = False
            if out["state"] not in (AlertState.CLOSED.value, AlertState.REVIEWED.value):
                out["state"] = AlertState.RESOLVED.value
        elif kind == EventKind.SUPERSEDED:
            out["active"] = False
        elif kind == EventKind.SUSPECT:
            out["suspect"] = True
        elif kind == EventKind.ACKNOWLEDGED:
            out["acked_by"] = e.actor
            if out["state"] == AlertState.OPEN.value:
                out["state"] = AlertState.ACKNOWLEDGED.value
        elif kind == EventKind.DISPOSING:
            out["state"] = AlertState.DISPOSING.value
        elif kind == EventKind.DISPOSED:
            out |= {"state": AlertState.CLOSED.value, "closed_by": e.actor}
            out["reason_code"] = e.detail.get("reason_code")
        elif kind == EventKind.REVIEWED:
            out |= {"state": AlertState.REVIEWED.value, "reviewed_by": e.actor}
        elif kind == EventKind.ASSIGNED:
            out["assignee"] = e.detail.get("assignee")
        elif kind == EventKind.OVERDUE:
            out["tier"] = TIERS.index(e.detail["tier"])
    return out
