"""Authentication and authorization: bearer tokens with roles, scoped to a tenant.

Roles: ``viewer`` (reads), ``operator`` (reads and acts on alerts: acknowledge, dispose,
comment, shelve, silences), ``admin`` (everything, including rules, sites and sensors) and
``ingest`` (only ``POST /api/v1/readings``, for the readings of its own enterprise).  A token
with a ``tenant`` sees and acts only on that enterprise's sites; city roles have no tenant.
``RISKMON_ADMIN_TOKEN`` is accepted as an admin token (bootstrap for deployment scripts).
Without it and without configured tokens every call is refused except health, readiness and
metrics.  Who acts is the token's name; the admin bootstrap token may name the person in
``X-Riskmon-User``.
"""

from __future__ import annotations

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

    def may_see(self, tenant: str | None) -> bool:
        return self.tenant is None or self.tenant == tenant


def find(request: Request, presented: str | None) -> Identity:
    settings = request.app.state.runtime.settings
    tokens: dict[str, Token] = request.app.state.tokens
    if not presented:
        raise HTTPException(401, "a bearer token is required", {"WWW-Authenticate": "Bearer"})
    if settings.admin_token and presented == settings.admin_token:
        return Identity(name=request.headers.get("x-riskmon-user") or "admin", role="admin")
    token = tokens.get(presented)
    if token is None:
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


OPEN = ("/healthz", "/readyz", "/metrics", "/console", "/docs", "/openapi.json", "/redoc")


def needed_role(method: str, path: str) -> Role | None:
    """The policy in one place: which role a call needs (None: open)."""
    if path in OPEN or path.startswith("/docs"):
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
    presented = presented or request.query_params.get("token")
    request.state.identity = require(role, find(request, presented))
