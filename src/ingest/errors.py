"""Errors of the ingest package."""

from __future__ import annotations

from monitor.errors import RiskmonError


class IngestError(RiskmonError):
    """A transport failed (broker unreachable, subscription refused...)."""

    def __init__(self, message: str, *, source: str, topic: str | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.topic = topic
