"""Alert tracker: a pure state machine per fingerprint (rule + sensor).

Signals come in, AlertEvents go out.  The tracker holds every alert whose condition is still
active, so that a new level updates the same alert instead of opening another.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable

from alerts.errors import AlertStateError
from alerts.model import Alert, AlertEvent, AlertState, EventKind, ReasonCode
from monitor.model import Category, Level, Signal

_DONE = (AlertState.CLOSED, AlertState.REVIEWED)
_NAMESPACE = uuid.UUID("5f1b1d0e-6c1a-4c36-9a53-7269736b6d6e")


def alert_id(fingerprint: str, opened_at: float) -> str:
    """Deterministic: replaying the same input after a crash or a rebalance yields the same
    alert, so idempotent writes turn the replay into a no-op."""
    return uuid.uuid5(_NAMESPACE, f"{fingerprint}|{opened_at:.6f}").hex


class AlertTracker:
    def __init__(self, id_factory: Callable[[str, float], str] = alert_id) -> None:
        self.active: dict[str, Alert] = {}
        self._new_id = id_factory

    def restore(self, alerts: Iterable[Alert]) -> None:
        for alert in alerts:
            if alert.active:
                self.active[alert.fingerprint] = alert

    def drop_sites(self, sites: set[str]) -> None:
        """Forget the alerts of sites this process no longer owns (they are in the store)."""
        for fp in [fp for fp, a in self.active.items() if a.site in sites]:
            del self.active[fp]

    def in_fault(self, sensor: str | None) -> bool:
        return sensor is not None and any(
            a.sensor == sensor and a.category == Category.SENSOR_HEALTH
            for a in self.active.values()
        )

    def _mark_suspects(self, signal: Signal, now: float) -> list[AlertEvent]:
        """A sensor going into fault makes its active process alerts suspect."""
        out = []
        for alert in self.active.values():
            if (
                alert.sensor == signal.sensor
                and alert.category == Category.PROCESS
                and not alert.suspect
            ):
                alert.suspect = True
                alert.updated_at = now
                out.append(self._event(EventKind.SUSPECT, alert, signal, now, alert.level))
        return out

    def observe(self, signal: Signal, now: float) -> list[AlertEvent]:
        events = self._observe(signal, now)
        if (
            signal.category == Category.SENSOR_HEALTH
            and signal.level != Level.CLEAR
            and events
            and events[0].kind == EventKind.OPENED
        ):
            events += self._mark_suspects(signal, now)
        return events

    def _observe(self, signal: Signal, now: float) -> list[AlertEvent]:
        fp = signal.fingerprint
        current = self.active.get(fp)
        if signal.level == Level.CLEAR:
            if current is None:
                return []
            del self.active[fp]
            current.active = False
            current.resolved_at = signal.ts
            current.updated_at = now
            if current.state not in _DONE:
                current.state = AlertState.RESOLVED
            return [self._event(EventKind.RESOLVED, current, signal, now, current.level)]
        if current is None or (current.state in _DONE and signal.level < current.level):
            # A condition that worsens after an operator closed its alert is a new alert.
            return [self._open(signal, now)]
        if current.state in _DONE or signal.level == current.level:
            current.level = signal.level
            return []
        previous = current.level
        current.level = signal.level
        current.peak_level = min(current.peak_level, signal.level)
        current.value = signal.value
        current.evidence = signal.evidence
        current.updated_at = now
        kind = EventKind.ESCALATED if signal.level < previous else EventKind.DEESCALATED
        return [self._event(kind, current, signal, now, previous)]

    def _open(self, signal: Signal, now: float) -> AlertEvent:
        alert = Alert(
            id=self._new_id(signal.fingerprint, signal.ts),
            fingerprint=signal.fingerprint,
            rule=signal.rule,
            sensor=signal.sensor,
            site=signal.site,
            category=signal.category,
            level=signal.level,
            peak_level=signal.level,
            opened_at=signal.ts,
            updated_at=now,
            value=signal.value,
            evidence=signal.evidence,
            retrospective=signal.retrospective,
            suspect=signal.category == Category.PROCESS and self.in_fault(signal.sensor),
            raised_at=now,
        )
        self.active[alert.fingerprint] = alert
        return self._event(EventKind.OPENED, alert, signal, now, None)

    @staticmethod
    def _event(
        kind: EventKind, alert: Alert, signal: Signal, now: float, previous: Level | None
    ) -> AlertEvent:
        alert.last_ts = signal.ts
        return AlertEvent(
            kind=kind,
            alert=alert,
            level=alert.level,
            previous_level=previous,
            ts=signal.ts,
            at=now,
            received=signal.received,
            detail={"value": signal.value, "evidence": signal.evidence},
        )

    def live(self, alert: Alert) -> Alert:
        """The tracker's own copy of an alert when it holds one (so actions stay coherent)."""
        held = self.active.get(alert.fingerprint)
        return held if held is not None and held.id == alert.id else alert


def acknowledge(alert: Alert, actor: str, now: float, note: str | None = None) -> AlertEvent:
    """签收.  Allowed on open alerts and on resolved ones nobody has acknowledged yet."""
    if alert.state not in (AlertState.OPEN, AlertState.RESOLVED) or alert.acked_at is not None:
        raise AlertStateError(
            f"alert {alert.id} is {alert.state} and cannot be acknowledged",
            alert_id=alert.id,
            state=alert.state,
        )
    if alert.state == AlertState.OPEN:
        alert.state = AlertState.ACKNOWLEDGED
    alert.acked_at, alert.acked_by, alert.updated_at = now, actor, now
    return AlertEvent(
        EventKind.ACKNOWLEDGED,
        alert,
        alert.level,
        alert.level,
        now,
        now,
        actor=actor,
        detail={"note": note} if note else {},
    )


def dispose(alert: Alert, actor: str, reason: ReasonCode, note: str, now: float) -> AlertEvent:
    """消警: close the alert with a reason code and a note."""
    if alert.state in _DONE:
        raise AlertStateError(
            f"alert {alert.id} is already closed", alert_id=alert.id, state=alert.state
        )
    if not note.strip():
        raise AlertStateError(
            "a note is required to dispose an alert", alert_id=alert.id, state=alert.state
        )
    alert.state = AlertState.CLOSED
    alert.closed_at, alert.closed_by, alert.updated_at = now, actor, now
    alert.reason_code, alert.note = reason, note
    return AlertEvent(
        EventKind.DISPOSED,
        alert,
        alert.level,
        alert.level,
        now,
        now,
        actor=actor,
        detail={"reason_code": reason.value, "note": note},
    )
