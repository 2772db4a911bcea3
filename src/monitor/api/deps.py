"""Shared API dependencies."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime

from fastapi import HTTPException, Request

from monitor.api.contract import EPOCH_RE
from monitor.app import Runtime
from monitor.errors import ConflictError, NotFoundError, StoreError


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
    """Accept ISO-8601 with a zone (``Z`` or ``+08:00``) or epoch seconds.  A time without a
    zone is refused, as in reading payloads: guessing UTC silently shifts a Beijing-time query
    by eight hours."""
    if value is None or value == "":
        return None
    if EPOCH_RE.match(value):
        return datetime.fromtimestamp(float(value), UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise HTTPException(422, f"{name}: not an ISO-8601 time or epoch seconds") from err
    if parsed.tzinfo is None:
        raise HTTPException(422, f"{name}: {value!r} has no time zone; add Z or an offset")
    return parsed


def on_behalf(request: Request, claimed: str | None, who: str) -> str:
    """The actor recorded: the person signed in.  Only the bootstrap admin token (deployment
    scripts acting for a person) may name someone else."""
    identity = getattr(request.state, "identity", None)
    if claimed and identity is not None and identity.bootstrap:
        return claimed
    return who


def personal(request: Request) -> None:
    """An approval must come from a person's own token, not the scripts' override."""
    identity = getattr(request.state, "identity", None)
    if identity is not None and identity.bootstrap:
        raise HTTPException(
            403, "approvals need a personal token; the admin token is for deployment scripts"
        )


def city(request: Request) -> None:
    """Shared configuration (rules) is changed by city roles, not by one enterprise."""
    if tenant_of(request) is not None:
        raise HTTPException(403, "rules are shared by every enterprise; a city role changes them")


@contextlib.contextmanager
def as_http() -> Iterator[None]:
    """Known failures of an operation as HTTP answers: 404 not found, 409 does not fit the
    current state, 403 not allowed, 503 the store is failing."""
    try:
        yield
    except NotFoundError as err:
        raise HTTPException(404, str(err)) from err
    except ConflictError as err:
        raise HTTPException(409, str(err)) from err
    except PermissionError as err:
        raise HTTPException(403, str(err)) from err
    except StoreError as err:
        raise HTTPException(503, str(err)) from err
