"""Authentication and authorization: bearer tokens with roles, scoped to a tenant.

Roles: ``viewer`` (reads), ``operator`` (reads and acts on alerts: acknowledge, dispose,
comment, shelve, silences), ``admin`` (everything, including rules, sites and sensors) and
``ingest`` (only ``POST /api/v1/readings``, for the readings of its own enterprise).  A token
with a ``tenant`` sees and acts only on that enterprise's sites; city roles have no tenant.
``RISKMON_ADMIN_TOKEN`` is accepted as an admin token (bootstrap for deployment scripts).
Without it and without configured tokens every call is refused except health, readiness and
metrics.  Who acts is the person signed in (the token's name).  Only the bootstrap admin token,
meant for deployment scripts, may name the person in ``X-Riskmon-User`` (or ``by``); it is
refused for approvals, so one person cannot pass the two-person rule alone.  ``?token=`` is
accepted only on the live stream (EventSource sends no headers), never elsewhere, so tokens
stay out of URLs and logs.  Failed sign-ins are counted per client address and, past
``RISKMON_AUTH_FAILURES_MAX`` within ``RISKMON_AUTH_FAILURE_WINDOW_S``, answered 429.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from fastapi import HTTPException, Request
from pydantic import BaseModel

Role = Literal["viewer", "operator", "admin", "ingest"]
RANK = {"ingest": 0, "viewer": 1, "operator": 2, "admin": 3}


class Token(BaseModel):
    token: str
    name: str
    role: Role
    tenant: str | None = None


class Identity(BaseModel):
    name: str
    role: Role
    tenant: str | None = None
    bootstrap: bool = False  # the RISKMON_ADMIN_TOKEN of deployment scripts

    def may_see(self, tenant: str | None) -> bool:
        return self.tenant is None or self.tenant == tenant


@dataclass
class SignInGuard:
    """Failed sign-ins per client address in a sliding window (pure; time passed in)."""

    limit: int
    window_s: float
    failures: dict[str, deque[float]] = field(default_factory=dict)

    def blocked(self, client: str, now: float) -> float | None:
        """Seconds until this client may try again, or None."""
        seen = self.failures.get(client)
        if not seen:
            return None
        while seen and seen[0] <= now - self.window_s:
            seen.popleft()
        if len(seen) < self.limit:
            return None
        return seen[0] + self.window_s - now

    def failed(self, client: str, now: float) -> None:
        self.failures.setdefault(client, deque()).append(now)
        if len(self.failures) > 10_000:  # bounded: forget the quietest clients
            for key in list(self.failures)[:1000]:
                del self.failures[key]


def find(request: Request, presented: str | None) -> Identity:
    rt = request.app.state.runtime
    tokens: dict[str, Token] = request.app.state.tokens
    guard: SignInGuard = request.app.state.sign_in
    client = request.client.host if request.client else "unknown"
    now = rt.clock.now()
    wait = guard.blocked(client, now)
    if wait is not None:
        rt.metrics.auth_failures.labels("rate_limited").inc()
        raise HTTPException(
            429, "too many failed sign-ins; try again later", {"Retry-After": f"{wait:.0f}"}
        )
    if not presented:
        rt.metrics.auth_failures.labels("missing").inc()
        raise HTTPException(401, "a bearer token is required", {"WWW-Authenticate": "Bearer"})
    if rt.settings.admin_token and presented == rt.settings.admin_token:
        named = request.headers.get("x-riskmon-user")
        return Identity(name=named or "admin", role="admin", bootstrap=True)
    token = tokens.get(presented)
    if token is None:
        guard.failed(client, now)
        rt.metrics.auth_failures.labels("unknown_token").inc()
        raise HTTPException(401, "unknown token", {"WWW-Authenticate": "Bearer"})
    return Identity(name=token.name, role=token.role, tenant=token.tenant)


def require(role: Role, who: Identity) -> Identity:
    """The caller must hold ``role`` or a stronger one (ingest keys only ingest)."""
    if role == "ingest":
        if who.role not in ("ingest", "admin"):
            raise HTTPException(403, "this needs an ingest key")
        return who
    if who.role == "ingest" or RANK[who.role] < RANK[role]:
        raise HTTPException(403, f"this needs the {role} role")
    return who


STREAM = "/api/v1/stream"
OPEN = ("/healthz", "/readyz", "/metrics", "/console", "/docs", "/openapi.json")
ASSETS = "/console/assets/"  # the console's and Swagger UI's files


def needed_role(method: str, path: str) -> Role | None:
    """The policy in one place: which role a call needs (None: open)."""
    if path in OPEN or path.startswith(("/docs", ASSETS)):
        return None
    if path == "/api/v1/readings" and method == "POST":
        return "ingest"
    if method in ("GET", "HEAD"):
        return "viewer"
    if path.startswith(("/api/v1/alerts", "/api/v1/silences")):
        return "operator"
    return "admin"  # rules, sites, sensors, backtest


async def authorize(request: Request) -> None:
    """App-wide dependency: checks the token against ``needed_role`` and keeps the caller's
    identity on ``request.state.identity`` for the routes."""
    role = needed_role(request.method, request.url.path)
    if role is None:
        return
    header = request.headers.get("authorization", "")
    presented = header[7:].strip() if header.lower().startswith("bearer ") else None
    if request.url.path == STREAM:  # EventSource cannot send headers
        presented = presented or request.query_params.get("token")
    request.state.identity = require(role, find(request, presented))
