"""Noise control through the API: silences and maintenance windows, shelving, and the
notification log.  None of it changes whether an alert is true."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy import text

from alerts.noise import Silence
from monitor.api.alerts import check_visible
from monitor.api.deps import actor, on_behalf, parse_time, runtime
from monitor.app import Runtime
from monitor.errors import ConflictError, NotFoundError, StoreError
from monitor.operations import Operations

router = APIRouter(prefix="/api/v1", tags=["noise control"])
Rt = Annotated[Runtime, Depends(runtime)]
T = TypeVar("T")


class SilenceIn(BaseModel):
    starts: str | None = None
    ends: str
    reason: str = Field(min_length=1)
    tenant: str | None = None
    site: str | None = None
    sensor_kind: str | None = None
    sensor: str | None = None


class ShelveIn(BaseModel):
    reason: str = Field(min_length=1)
    until: str = Field(description="mandatory expiry: ISO-8601 or epoch seconds")
    by: str | None = None


def _ops(rt: Runtime) -> Operations:
    if rt.notifier is None:
        raise HTTPException(409, "this node sends no notifications (gateway role)")
    return rt.ops


async def _run(coro: Awaitable[T]) -> T:
    try:
        return await coro
    except NotFoundError as err:
        raise HTTPException(404, str(err)) from err
    except ConflictError as err:
        raise HTTPException(409, str(err)) from err
    except StoreError as err:
        raise HTTPException(503, str(err)) from err


@router.post("/silences", status_code=201)
async def create_silence(
    body: SilenceIn, rt: Rt, who: Annotated[str, Depends(actor)]
) -> dict[str, Any]:
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
async def list_silences(rt: Rt) -> list[dict[str, Any]]:
    return _ops(rt).silences()


@router.delete("/silences/{silence_id}", status_code=204)
async def delete_silence(silence_id: str, rt: Rt) -> None:
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
async def notifications(rt: Rt, alert: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    async with rt.db.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT * FROM notifications WHERE (CAST(:a AS text) IS NULL OR alert_id = :a) "
                "ORDER BY id DESC LIMIT :n"
            ),
            {"a": alert, "n": limit},
        )
        return [dict(r._mapping) for r in result]
