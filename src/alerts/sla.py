"""SLA timers and escalation up the hierarchy (DOMAIN.md §3): each level has a time limit to
acknowledge and one to dispose.  Every limit that passes moves the alert one tier up:
enterprise → district regulator → city.  Pure and driven by ``now``: the tiers are computed
from the stored times, so timers survive a restart."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from alerts.model import Alert, AlertEvent, AlertState, EventKind

TIERS = ("enterprise", "district", "city")
# DOMAIN.md §3 defaults, seconds: red 5/30 min, orange 15/120, yellow 30/480, blue 120/1440
ACK_S = {1: 300.0, 2: 900.0, 3: 1800.0, 4: 7200.0}
DISPOSE_S = {1: 1800.0, 2: 7200.0, 3: 28800.0, 4: 86400.0}


@dataclass(frozen=True)
class SlaPolicy:
    ack_s: dict[int, float] = field(default_factory=lambda: dict(ACK_S))
    dispose_s: dict[int, float] = field(default_factory=lambda: dict(DISPOSE_S))

    def due_tier(self, alert: Alert, now: float) -> tuple[int, str, float] | None:
        """(tier due, what was missed, limit) for an alert still waiting for people."""
        level = int(alert.level)
        if alert.retrospective or alert.raised_at is None or alert.suppressed:
            return None  # a suppressed alert's timers start when it is shown
        top = len(TIERS) - 1
        ack_limit = self.ack_s[level]
        if alert.state == AlertState.OPEN:
            return min(top, int((now - alert.raised_at) // ack_limit)), "acknowledge", ack_limit
        if alert.state in (AlertState.ACKNOWLEDGED, AlertState.DISPOSING):
            acked = alert.acked_at or alert.raised_at
            # tiers already reached while waiting for the acknowledgement, then the dispose timer
            reached = min(top, int((acked - alert.raised_at) // ack_limit))
            limit = self.dispose_s[level]
            return min(top, reached + int((now - acked) // limit)), "dispose", limit
        return None


def escalate(alerts: Iterable[Alert], now: float, policy: SlaPolicy) -> list[AlertEvent]:
    """One ``overdue`` event for every tier an alert has newly reached; each event's alert is
    the alert at that tier (the caller makes the last one current once it is stored)."""
    events = []
    for alert in alerts:
        due = policy.due_tier(alert, now)
        if due is None or due[0] <= alert.tier:
            continue
        tier, missed, limit = due
        for step in range(alert.tier + 1, tier + 1):  # one event for every step up
            alert = replace(alert, tier=step, updated_at=now)
            events.append(
                AlertEvent(
                    EventKind.OVERDUE,
                    alert,
                    alert.level,
                    alert.level,
                    now,
                    now,
                    actor="sla",
                    detail={"tier": TIERS[step], "missed": missed, "limit_s": limit},
                )
            )
    return events
