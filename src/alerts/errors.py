"""Errors of the alerts package."""

from __future__ import annotations

from monitor.errors import ConflictError


class AlertStateError(ConflictError):
    """An operator action does not fit the alert's state."""

    def __init__(self, message: str, *, alert_id: str, state: str) -> None:
        super().__init__(message)
        self.alert_id = alert_id
        self.state = state
