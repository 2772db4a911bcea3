"""Noise control through the API: silences and maintenance windows, shelving, and the
notification log.  None of it changes whether an alert is true."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy import text

from alerts.noise import Shelf, Silence
from monitor.api.deps import actor, on_behalf, parse_time, runtime
from monitor.app import Runtime
from monitor.store import noise as noise_store

router = APIRouter(prefix="/api/v1", tags=["noise control"])
Rt = Annotated[Runtime, Depends(runtime)]


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


def _noise(rt: Runtime) -> Any:
    if rt.notifier is None:
        raise HTTPException(409, "this node sends no notifications (gateway role)")
    return rt.notifier.noise


@router.post("/silences", status_code=201)
async def create_silence(
    body: SilenceIn, rt: Rt, who: Annotated[str, Depends(actor)]
) -> dict[str, Any]:
    start = parse_time(body.starts, "starts")
    end = parse_time(body.ends, "ends")
    assert end is not None
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
    _noise(rt).silences[silence.id] = silence
    async with rt.db.begin() as conn:
        await noise_store.save_silence(conn, silence)
    return asdict(silence)


@router.get("/silences")
async def list_silences(rt: Rt) -> list[dict[str, Any]]:
    return [asdict(s) for s in _noise(rt).silences.values()]


@router.delete("/silences/{silence_id}", status_code=204)
async def delete_silence(silence_id: str, rt: Rt) -> None:
    if _noise(rt).silences.pop(silence_id, None) is None:
        raise HTTPException(404, f"silence {silence_id!r} not found")
    async with rt.db.begin() as conn:
        await noise_store.delete_silence(conn, silence_id)


@router.post("/alerts/{alert_id}/shelve")
async def shelve(
    request: Request, alert_id: str, body: ShelveIn, rt: Rt, who: Annotated[str, Depends(actor)]
) -> dict[str, Any]:
    until = parse_time(body.until, "until")
    assert until is not None
    if until.timestamp() <= rt.clock.now():
        raise HTTPException(422, "until must be in the future")
    shelf = Shelf(alert_id, until.timestamp(), body.reason, on_behalf(request, body.by, who))
    _noise(rt).shelves[alert_id] = shelf
    async with rt.db.begin() as conn:
        await noise_store.save_shelf(conn, shelf)
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
