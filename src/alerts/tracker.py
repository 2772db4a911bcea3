"""Alert tracker: a pure state machine per fingerprint (rule + sensor | item | site).

Signals come in, AlertEvents go out.  The tracker holds every alert whose condition is still
active (``active``, by fingerprint), so that a new level updates the same alert instead of
opening another, and every cleared alert nobody has acknowledged yet (``waiting``, by id), so
that a red condition that came and went stays on the operators' list.

Alerts are immutable: each transition stores a new value and puts it in the event, so an
event's alert is a snapshot of that moment.  The store's invariant "at most one active alert
per fingerprint" holds by construction: an alert that a new one replaces ends its activity in
an event that comes before the new alert's ``opened`` event in the same list, and the caller
writes one list in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from alerts import holdback, suppression
from alerts.holdback import HELD
from alerts.model import Alert, AlertEvent, AlertState, EventKind
from monitor.model import Category, Level, Signal

_NAMESPACE = uuid.UUID("5f1b1d0e-6c1a-4c36-9a53-7269736b6d6e")


def alert_id(fingerprint: str, opened_at: float) -> str:
    """Deterministic: replaying the same input after a crash or a rebalance yields the same
    alert, so idempotent writes turn the replay into a no-op."""
    return uuid.uuid5(_NAMESPACE, f"{fingerprint}|{opened_at:.6f}").hex


class AlertTracker:
    def __init__(self, id_factory: Callable[[str, float], str] = alert_id) -> None:
        self.active: dict[str, Alert] = {}
        self.waiting: dict[str, Alert] = {}  # cleared and unacknowledged, by id
        self._new_id = id_factory

    def restore(self, alerts: Iterable[Alert]) -> None:
        """Hold alerts loaded from the store: the active ones and the cleared waiting ones."""
        for alert in alerts:
            self.apply(alert)
            if alert.active:
                self.active[alert.fingerprint] = alert

    def apply(self, alert: Alert) -> None:
        """Take the alert as it is after a stored change made outside ``observe`` (an
        operator action, an SLA step).  Alerts this tracker does not hold are left alone."""
        held = self.active.get(alert.fingerprint)
        if held is not None and held.id == alert.id:
            self.active[alert.fingerprint] = alert
        if not alert.active and alert.waiting:
            self.waiting[alert.id] = alert
        else:
            self.waiting.pop(alert.id, None)

    def get(self, alert_id: str) -> Alert | None:
        """The tracker's copy of an alert, when it holds one."""
        found = self.waiting.get(alert_id)
        if found is not None:
            return found
        return next((a for a in self.active.values() if a.id == alert_id), None)

    def drop_sites(self, sites: set[str]) -> None:
        """Forget the alerts of sites this process no longer owns (they are in the store)."""
        for fp in [fp for fp, a in self.active.items() if a.site in sites]:
            del self.active[fp]
        for aid in [aid for aid, a in self.waiting.items() if a.site in sites]:
            del self.waiting[aid]

    def in_fault(self, sensor: str | None) -> bool:
        return sensor is not None and any(
            a.sensor == sensor and a.category == Category.SENSOR_HEALTH
            for a in self.active.values()
        )

    def observe(self, signal: Signal, now: float) -> list[AlertEvent]:
        signal = holdback.hold(signal, self.active.values())
        current = self.active.get(signal.fingerprint)
        by = suppression.suppressed_by(signal, self.active.values(), current)
        events = self._observe(signal, now, by)
        if (
            signal.category == Category.SENSOR_HEALTH
            and signal.level != Level.CLEAR
            and any(e.kind == EventKind.OPENED for e in events)
        ):
            events += self._mark_suspects(signal, now)
        for alert, reason in holdback.to_release(self.active.values(), signal):
            events += self._observe(holdback.released(alert, reason, signal), now)
        for alert in suppression.to_show(self.active.values(), signal):
            events.append(self._show(alert, "its sensor's fault cleared", signal, now))
        return events

    def _show(self, alert: Alert, reason: str, signal: Signal, now: float) -> AlertEvent:
        """A suppressed alert goes on the operators' list (``alerts.suppression``); its SLA
        timers start now."""
        shown = _changed(alert, signal, now, suppressed=False, raised_at=now)
        self.active[alert.fingerprint] = shown
        event = _event(EventKind.UNSUPPRESSED, shown, signal, now, alert.level)
        return replace(event, detail={**event.detail, "reason": reason})

    def _mark_suspects(self, signal: Signal, now: float) -> list[AlertEvent]:
        """A sensor going into fault makes its active process alerts suspect."""
        out = []
        for fp, alert in list(self.active.items()):
            if (
                alert.sensor == signal.sensor
                and alert.category == Category.PROCESS
                and not alert.suspect
            ):
                marked = _changed(alert, signal, now, suspect=True)
                self.active[fp] = marked
                out.append(_event(EventKind.SUSPECT, marked, signal, now, alert.level))
        return out

    def _observe(
        self, signal: Signal, now: float, suppressed_by: list[str] | None = None
    ) -> list[AlertEvent]:
        """``suppressed_by``: the faults that suppress the alert the signal opens or changes
        (``suppression.suppressed_by``); none, it is shown."""
        current = self.active.get(signal.fingerprint)
        if signal.level == Level.CLEAR:
            return [] if current is None else [self._clear(current, signal, now)]
        if current is None:
            return [self._open(signal, now, suppressed_by)]
        if current.done:
            # Closed by an operator while the condition held.  The same or a lower level is
            # the condition the operator closed; a worse one is a new alert, and the closed
            # one's activity ends in the same list of events (so in the same transaction).
            if signal.level >= current.level:
                return []
            ended = _changed(current, signal, now, active=False)
            opened = self._open(signal, now, suppressed_by)
            superseded = _event(EventKind.SUPERSEDED, ended, signal, now, current.level)
            detail = {**superseded.detail, "by": opened.alert.id}
            return [replace(superseded, detail=detail), opened]
        if signal.level == current.level and signal.evidence.get(HELD) == current.evidence.get(
            HELD
        ):
            return []
        changed = _changed(
            current,
            signal,
            now,
            level=signal.level,
            peak_level=min(current.peak_level, signal.level),
            value=signal.value,
            evidence=dict(signal.evidence),
            suppressed=bool(suppressed_by),
            # shown now (a red): its SLA timers start now
            raised_at=now if current.suppressed and not suppressed_by else current.raised_at,
        )
        self.active[signal.fingerprint] = changed
        if signal.level != current.level:
            kind = EventKind.ESCALATED if signal.level < current.level else EventKind.DEESCALATED
            return [_event(kind, changed, signal, now, current.level)]
        if HELD in signal.evidence:  # the rule went to red; the alert stays at orange
            return [_event(EventKind.HELD_BACK, changed, signal, now, current.level)]
        # the rule came down from the red it held back to the alert's own level
        return [_event(EventKind.DEESCALATED, changed, signal, now, holdback.wanted_level(current))]

    def _clear(self, current: Alert, signal: Signal, now: float) -> AlertEvent:
        del self.active[current.fingerprint]
        cleared = _changed(
            current,
            signal,
            now,
            active=False,
            resolved_at=signal.ts,
            state=current.state if current.done else AlertState.RESOLVED,
        )
        self.apply(cleared)  # waits when nobody acknowledged it
        return _event(EventKind.RESOLVED, cleared, signal, now, current.level)

    def _open(self, signal: Signal, now: float, suppressed_by: list[str] | None) -> AlertEvent:
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
            evidence=dict(signal.evidence),
            retrospective=signal.retrospective,
            suspect=signal.category == Category.PROCESS and self.in_fault(signal.sensor),
            suppressed=bool(suppressed_by),
            raised_at=now,
            last_ts=signal.ts,
            transitions=1,
        )
        self.active[alert.fingerprint] = alert
        event = _event(EventKind.OPENED, alert, signal, now, None)
        if suppressed_by:
            event = replace(event, detail={**event.detail, "suppressed_by": suppressed_by})
        return replace(event, detail={**event.detail, "suspect": True}) if alert.suspect else event


def _changed(alert: Alert, signal: Signal, now: float, **condition: Any) -> Alert:
    """A new version of ``alert``: its condition changed by ``signal`` (one transition more)."""
    return replace(
        alert,
        **condition,
        updated_at=now,
        last_ts=signal.ts,
        transitions=alert.transitions + 1,
    )


def _event(
    kind: EventKind, alert: Alert, signal: Signal, now: float, previous: Level | None
) -> AlertEvent:
    return AlertEvent(
        kind=kind,
        alert=alert,
        level=alert.level,
        previous_level=previous,
        ts=signal.ts,
        at=now,
        received=signal.received,
        detail={"value": signal.value, "evidence": signal.evidence}
        | ({"suppressed": True} if alert.suppressed else {}),
    )
