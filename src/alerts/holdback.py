"""A red from a sensor in fault waits for corroboration (DOMAIN.md §1, issue 16).

While a sensor has an active health alert whose fault makes readings look worse than they are
(its evidence says ``holds_red``: spike, drift, a gauge's jump), a process red from that
sensor is held at orange.  The alert keeps the level the rule wants in its evidence
(``held_back``), so the store has it and a restart re-arms the rule at red, not at orange.

The red is released, through the tracker's usual transitions (an alert an operator closed
meanwhile is superseded by a new red), when

- the sensor's last holding fault clears, or
- another sensor of the same site raises the same rule at orange or worse without being
  suspect itself (corroboration); a red that is corroborated when it comes is not held.

Pure functions over the tracker's active alerts; the tracker decides when to call them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import replace
from typing import Any

from alerts.model import Alert
from monitor.model import Category, Level, Signal

HELD = "held_back"
HOLDS = "holds_red"


def is_held(alert: Alert) -> bool:
    return HELD in alert.evidence


def wanted_level(alert: Alert) -> Level:
    """The level the rule gave the alert's condition: the alert's own, or the red it holds
    back.  The rule's state is restored at this level."""
    held = alert.evidence.get(HELD)
    return Level(int(held["level"])) if isinstance(held, dict) else alert.level


def faults(active: Iterable[Alert], sensor: str) -> list[str]:
    """The rules whose active health alerts on ``sensor`` hold its reds back."""
    return sorted(
        a.rule
        for a in active
        if a.sensor == sensor and a.category == Category.SENSOR_HEALTH and a.evidence.get(HOLDS)
    )


def confirms(alert: Alert) -> bool:
    """``alert`` can corroborate: a process alert of one sensor at orange or worse, from a
    sensor that is not in fault."""
    return (
        alert.sensor is not None
        and alert.category == Category.PROCESS
        and alert.level <= Level.ORANGE
        and not alert.suspect
        and not is_held(alert)
    )


def corroborates(alert: Alert, rule: str, site: str, sensor: str) -> bool:
    """``alert`` confirms a red of ``rule`` on ``sensor``: the same rule on another sensor of
    the site."""
    return alert.rule == rule and alert.site == site and alert.sensor != sensor and confirms(alert)


def hold(signal: Signal, active: Collection[Alert]) -> Signal:
    """``signal`` as the tracker takes it: a process red from a sensor in fault, with nothing
    to corroborate it, at orange with what it holds back."""
    if signal.level != Level.RED or signal.category != Category.PROCESS or signal.sensor is None:
        return signal
    held_by = faults(active, signal.sensor)
    if not held_by:
        return signal
    by = next(
        (a.sensor for a in active if corroborates(a, signal.rule, signal.site, signal.sensor)),
        None,
    )
    if by is not None:
        return replace(signal, evidence={**signal.evidence, "corroborated_by": by})
    held: dict[str, Any] = {
        "level": int(Level.RED),
        "faults": held_by,
        "reason": "red held back: the sensor is in fault; red needs corroboration",
    }
    return replace(signal, level=Level.ORANGE, evidence={**signal.evidence, HELD: held})


def to_release(active: Collection[Alert], signal: Signal) -> list[tuple[Alert, str]]:
    """The held alerts ``signal`` releases, each with the reason, once the tracker has taken
    it: a health verdict that leaves its sensor without a holding fault releases that
    sensor's; an alert that corroborates releases those of its rule on the site's other
    sensors."""
    health = signal.category == Category.SENSOR_HEALTH
    if signal.sensor is None or not (health or Level.CLEAR < signal.level <= Level.ORANGE):
        return []
    held = [a for a in active if is_held(a)]
    if not held:
        return []
    if health:
        if faults(active, signal.sensor):
            return []
        return [(a, "the sensor's fault cleared") for a in held if a.sensor == signal.sensor]
    current = next((a for a in active if a.fingerprint == signal.fingerprint and a.active), None)
    if current is None:
        return []
    return [
        (a, f"corroborated by {signal.sensor}")
        for a in held
        if corroborates(current, a.rule, a.site, a.sensor or "")
    ]


def released(alert: Alert, reason: str, signal: Signal) -> Signal:
    """The signal that raises a held alert to the level it held back, at ``signal``'s time."""
    evidence = {k: v for k, v in alert.evidence.items() if k != HELD}
    return Signal(
        rule=alert.rule,
        sensor=alert.sensor,
        site=alert.site,
        level=wanted_level(alert),
        category=alert.category,
        ts=signal.ts,
        received=signal.received,
        value=alert.value,
        evidence={**evidence, "released": reason},
        retrospective=alert.retrospective,
    )
