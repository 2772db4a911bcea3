"""Noise control: who is told, and when.  None of it changes whether an alert is true.

``NoiseControl.decide(event, now)`` answers whether an alert event is to be notified and, if
not, why: retrospective history, start-up grace, silences (matchers and a time window),
shelving by an operator (with a mandatory expiry), suppression by design
(``alerts.suppression``), inhibition (a sensor offline or in fault inhibits its own process
alerts; a red alert on a site holds back yellow and blue ones of the same site) and flapping
(too many changes in a window hold notifications until it is stable).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from alerts import suppression
from alerts.model import Alert, AlertEvent, EventKind
from monitor.model import Category, Level

NOTIFIED = {
    EventKind.OPENED, EventKind.ESCALATED, EventKind.OVERDUE, EventKind.RESOLVED,
    EventKind.UNSUPPRESSED,
}  # fmt: skip


@dataclass(frozen=True)
class Silence:
    id: str
    starts: float
    ends: float
    reason: str
    created_by: str
    tenant: str | None = None
    site: str | None = None
    sensor_kind: str | None = None
    sensor: str | None = None

    def matches(self, alert: Alert, tenant: str | None, kind: str | None, now: float) -> bool:
        return (
            self.starts <= now < self.ends
            and self.tenant in (None, tenant)
            and self.site in (None, alert.site)
            and self.sensor_kind in (None, kind)
            and self.sensor in (None, alert.sensor)
        )


@dataclass
class Shelf:
    alert_id: str
    until: float
    reason: str
    by: str


@dataclass
class NoiseControl:
    started: float
    startup_grace_s: float = 120.0
    flap_changes: int = 6
    flap_window_s: float = 600.0
    silences: dict[str, Silence] = field(default_factory=dict)
    shelves: dict[str, Shelf] = field(default_factory=dict)
    changes: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))

    def decide(
        self,
        event: AlertEvent,
        now: float,
        active: list[Alert],
        tenant_of: Callable[[str], str | None],
        kind_of: Callable[[str | None], str | None],
    ) -> tuple[bool, str]:
        alert = event.alert
        if event.kind not in NOTIFIED:
            return False, "not a notified kind"
        if alert.retrospective:
            return False, "retrospective"
        if alert.suppressed:
            return False, f"suppressed by design: its sensor is in fault ({_faults(active, alert)})"
        if (
            alert.category == Category.DATA_INTERRUPTION
            and now - self.started < self.startup_grace_s
        ):
            return False, "start-up grace"
        if self._flapping(alert, now):
            return False, "flapping"
        shelf = self.shelves.get(alert.id)
        if shelf is not None and now < shelf.until:
            return False, f"shelved by {shelf.by} until {shelf.until:.0f}: {shelf.reason}"
        tenant, kind = tenant_of(alert.site), kind_of(alert.sensor)
        for silence in self.silences.values():
            if silence.matches(alert, tenant, kind, now):
                return False, f"silenced ({silence.id}): {silence.reason}"
        if alert.category == Category.PROCESS and alert.sensor is not None:
            for other in active:
                if other.sensor == alert.sensor and other.category != Category.PROCESS:
                    return False, f"inhibited: its sensor has a {other.category} alert"
        if alert.level in (Level.YELLOW, Level.BLUE):
            for other in active:
                if other.site == alert.site and other.level == Level.RED and other.id != alert.id:
                    return False, "inhibited: a red alert on the same site"
        return True, "notify"

    def _flapping(self, alert: Alert, now: float) -> bool:
        seen = self.changes[alert.fingerprint]
        seen.append(now)
        while seen and seen[0] < now - self.flap_window_s:
            seen.popleft()
        return len(seen) > self.flap_changes


def _faults(active: list[Alert], alert: Alert) -> str:
    return ", ".join(suppression.faults(active, alert.sensor or "")) or "cleared since"
