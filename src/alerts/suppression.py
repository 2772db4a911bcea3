"""Suppression by design (ISA-18.2): a sensor in fault does not page with its readings.

While a sensor has an active health alert whose fault makes its readings meaningless (its
evidence says ``suppresses``: a piezometer whose reading wanders with water in its cable), a
process alert that would open on that sensor below red opens *suppressed*: it is stored with
its history, but it is off the operators' list, not notified and not counted in the alarm load;
the health alert stands for it.  A red is never suppressed (it opens as usual, suspect), and an
alert already shown when the fault comes stays shown (it is marked suspect).

A suppressed alert is shown (``unsuppressed``) when

- its sensor's last suppressing fault clears while the condition still holds, or
- its condition reaches red.

Pure functions over the tracker's active alerts; the tracker decides when to call them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from alerts.holdback import HELD
from alerts.model import Alert
from monitor.model import Category, Level, Signal

SUPPRESSES = "suppresses"


def faults(active: Iterable[Alert], sensor: str) -> list[str]:
    """The rules whose active health alerts on ``sensor`` suppress its process alerts."""
    return sorted(
        a.rule
        for a in active
        if a.sensor == sensor
        and a.category == Category.SENSOR_HEALTH
        and a.evidence.get(SUPPRESSES)
    )


def suppressed_by(signal: Signal, active: Collection[Alert], current: Alert | None) -> list[str]:
    """The faults that suppress the alert ``signal`` opens or changes (none: it is shown).

    Only a process condition below red, not holding a red back, on a sensor in a suppressing
    fault; and only an alert that is not already shown (``current`` is the fingerprint's
    active alert, if any)."""
    if (
        signal.category != Category.PROCESS
        or signal.sensor is None
        or signal.level in (Level.CLEAR, Level.RED)
        or HELD in signal.evidence
    ):
        return []
    if current is not None and not current.done and not current.suppressed:
        return []
    return faults(active, signal.sensor)


def to_show(active: Collection[Alert], signal: Signal) -> list[Alert]:
    """The suppressed alerts a health verdict shows, once the tracker has taken it: those of
    its sensor when no suppressing fault is left on it."""
    if signal.category != Category.SENSOR_HEALTH or signal.sensor is None:
        return []
    if faults(active, signal.sensor):
        return []
    return [a for a in active if a.sensor == signal.sensor and a.suppressed and a.active]
