"""Shared API dependencies."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import HTTPException, Request

from monitor.app import Runtime


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def actor(request: Request) -> str:
    """Who acts: the name of the caller's token (see ``monitor.api.auth``)."""
    who = getattr(request.state, "identity", None)
    return who.name if who is not None else "anonymous"


def tenant_of(request: Request) -> str | None:
    """The enterprise a caller is limited to (None: a city role that sees everything)."""
    who = getattr(request.state, "identity", None)
    return who.tenant if who is not None else None


def visible(request: Request, site: str) -> bool:
    tenant = tenant_of(request)
    if tenant is None:
        return True
    found = runtime(request).registry.sites.get(site)
    return found is not None and found.tenant == tenant


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


def on_behalf(request: Request, claimed: str | None, who: str) -> str:
    """The actor recorded: the caller's token name; only the admin may name someone else
    (deployment scripts acting for a person)."""
    identity = getattr(request.state, "identity", None)
    if claimed and identity is not None and identity.role == "admin":
        return claimed
    return who
