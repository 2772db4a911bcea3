"""Error hierarchy of the kernel.  Each package derives its own base from ``RiskmonError``."""

from __future__ import annotations


class RiskmonError(Exception):
    """Base of every error riskmon raises on purpose."""


class ConfigError(RiskmonError):
    """The configuration (settings or YAML) is invalid."""


class NotFoundError(RiskmonError):
    def __init__(self, what: str, key: str) -> None:
        super().__init__(f"{what} {key!r} not found")
        self.what = what
        self.key = key


class ConflictError(RiskmonError):
    """An operation does not fit the current state (for example acking a closed alert)."""


class StoreError(RiskmonError):
    """The store failed; wraps the driver error."""
