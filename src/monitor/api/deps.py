"""Shared API dependencies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Header, HTTPException, Request

from monitor.app import Runtime


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def actor(x_riskmon_user: Annotated[str | None, Header()] = None) -> str:
    """Who acts.  Until token auth lands this is the X-Riskmon-User header."""
    return x_riskmon_user or "anonymous"


def parse_time(value: str | None, name: str) -> datetime | None:
    """Accept ISO-8601 (with zone; naive means UTC) or epoch seconds."""
    if value is None or value == "":
        return None
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise HTTPException(422, f"{name}: not an ISO-8601 time or epoch seconds") from err
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
