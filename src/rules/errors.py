"""Errors of the rules package."""

from __future__ import annotations

from monitor.errors import RiskmonError


class RuleError(RiskmonError):
    """A rule is invalid or cannot be applied."""

    def __init__(self, message: str, *, rule: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule
