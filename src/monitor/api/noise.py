"""Noise control through the API: silences and maintenance windows, shelving, and the
notification log.  None of it changes whether an alert is true."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import text

from alerts.noise import Silence
from monitor.api.alerts import check_visible
from monitor.api.contract import TimeBody, TimeText
from monitor.api.deps import (
    actor,
    as_http,
    on_behalf,
    parse_time,
    runtime,
    tenant_of,
    visible,
)
from monitor.app import Runtime
from monitor.operations import Operations

router = APIRouter(prefix="/api/v1", tags=["noise control"])
Rt = Annotated[Runtime, Depends(runtime)]
T = TypeVar("T")


class SilenceIn(BaseModel):
    starts: TimeText | None = None
    ends: TimeBody
    reason: str = Field(min_length=1)
    tenant: str | None = None
    site: str | None = None
    sensor_kind: str | None = None
    sensor: str | None = None


class ShelveIn(BaseModel):
    reason: str = Field(min_length=1)
    until: TimeBody = Field(description="mandatory expiry: ISO-8601 or epoch seconds")
    by: str | None = None


def _ops(rt: Runtime) -> Operations:
    if rt.notifier is None:
        raise HTTPException(409, "this node sends no notifications (gateway role)")
    return rt.ops


async def _run(coro: Awaitable[T]) -> T:
    with as_http():
        return await coro


@router.post("/silences", status_code=201)
async def create_silence(
    body: SilenceIn, rt: Rt, request: Request, who: Annotated[str, Depends(actor)]
) -> dict[str, Any]:
    """A silence or maintenance window.  An enterprise's token silences its own enterprise
    only (its tenant is set for it; a site must be its own)."""
    tenant = tenant_of(request)
    if tenant is not None:
        if body.tenant not in (None, tenant):
            raise HTTPException(403, f"this token silences {tenant!r} only")
        if body.site is not None and not visible(request, body.site):
            raise HTTPException(404, f"site {body.site!r} not found")
        body = body.model_copy(update={"tenant": tenant})
    start = parse_time(body.starts, "starts")
    end = parse_time(body.ends, "ends")
    if end is None:
        raise HTTPException(422, "ends is required")
    starts = start.timestamp() if start else rt.clock.now()
    if end.timestamp() <= starts:
        raise HTTPException(422, "ends must be after starts")
    silence = Silence(
        uuid.uuid4().hex[:12],
        starts,
        end.timestamp(),
        body.reason,
        who,
        body.tenant,
        body.site,
        body.sensor_kind,
        body.sensor,
    )
    return asdict(await _run(_ops(rt).add_silence(silence)))


@router.get("/silences")
async def list_silences(rt: Rt, request: Request) -> list[dict[str, Any]]:
    tenant = tenant_of(request)
    return [s for s in _ops(rt).silences() if tenant is None or s["tenant"] == tenant]


@router.delete("/silences/{silence_id}", status_code=204)
async def delete_silence(silence_id: str, rt: Rt, request: Request) -> None:
    tenant = tenant_of(request)
    if tenant is not None and not any(
        s["id"] == silence_id and s["tenant"] == tenant for s in _ops(rt).silences()
    ):
        raise HTTPException(404, f"silence {silence_id!r} not found")
    await _run(_ops(rt).delete_silence(silence_id))


@router.post("/alerts/{alert_id}/shelve", dependencies=[Depends(check_visible)])
async def shelve(
    request: Request, alert_id: str, body: ShelveIn, rt: Rt, who: Annotated[str, Depends(actor)]
) -> dict[str, Any]:
    """Hold back an alert's notifications until an expiry; it stays true and listed."""
    until = parse_time(body.until, "until")
    if until is None:
        raise HTTPException(422, "until is required")
    if until.timestamp() <= rt.clock.now():
        raise HTTPException(422, "until must be in the future")
    by = on_behalf(request, body.by, who)
    shelf = await _run(_ops(rt).shelve(alert_id, by, until.timestamp(), body.reason))
    return asdict(shelf)


@router.get("/notifications")
async def notifications(
    rt: Rt,
    request: Request,
    alert: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[dict[str, Any]]:
    """The notification log.  An enterprise's token sees its own alerts' rows, without the
    channel URLs (they hold the robots' secret keys)."""
    tenant = tenant_of(request)
    sites = [s.id for s in rt.registry.sites.values() if s.tenant == tenant]
    async with rt.db.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT n.* FROM notifications n WHERE (CAST(:a AS text) IS NULL OR "
                "n.alert_id = :a) AND (CAST(:scoped AS boolean) IS NOT TRUE OR EXISTS "
                "(SELECT 1 FROM alerts a WHERE a.id = n.alert_id AND a.site = ANY(:sites))) "
                "ORDER BY n.id DESC LIMIT :n"
            ),
            {"a": alert, "n": limit, "scoped": tenant is not None, "sites": sites},
        )
        rows = [dict(r._mapping) for r in result]
    if tenant is not None:
        for row in rows:
            row.pop("url", None)
    return rows
