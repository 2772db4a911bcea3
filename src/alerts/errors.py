"""Errors of the alerts package."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.errors import ConflictError

if TYPE_CHECKING:
    from alerts.model import Alert


class AlertStateError(ConflictError):
    """An operator action does not fit the alert's state."""

    def __init__(self, message: str, *, alert_id: str, state: str) -> None:
        super().__init__(message)
        self.alert_id = alert_id
        self.state = state


class ConditionActiveError(AlertStateError):
    """A close (消警) was asked while the alert's condition still holds."""

    def __init__(self, alert: Alert, set_point: float | None) -> None:
        against = "" if set_point is None else f" against the set-point {set_point:g}"
        super().__init__(
            f"alert {alert.id} ({alert.rule}) is still active: the value is {alert.value}"
            f"{against} (level {int(alert.level)}); it can be closed once the condition "
            "clears, or now with force: true and a force_reason",
            alert_id=alert.id,
            state=alert.state,
        )
        self.value = alert.value
        self.set_point = set_point
