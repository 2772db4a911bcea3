"""Alerts: list, read with history, acknowledge, dispose."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from alerts import workflow
from monitor.api.deps import actor, parse_time, runtime
from monitor.app import Runtime
from monitor.errors import ConflictError, NotFoundError
from monitor.schemas import AckIn, AssignIn, CommentIn, DisposeIn, NoteIn
from monitor.store import alerts as alert_store

router = APIRouter(prefix="/api/v1", tags=["alerts"])
Rt = Annotated[Runtime, Depends(runtime)]
STATES = {"open", "acknowledged", "disposing", "resolved", "closed", "reviewed"}


@router.get("/alerts")
async def list_alerts(
    rt: Rt,
    state: Annotated[
        str | None, Query(description="comma-separated; 'active' = open,acknowledged")
    ] = None,
    level: Annotated[int | None, Query(ge=1, le=4)] = None,
    site: str | None = None,
    since: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[dict[str, Any]]:
    states = None
    if state:
        states = [
            s
            for part in state.split(",")
            for s in (["open", "acknowledged", "disposing"] if part == "active" else [part.strip()])
        ]
        unknown = set(states) - STATES
        if unknown:
            raise HTTPException(422, f"unknown state(s) {sorted(unknown)}; use {sorted(STATES)}")
    async with rt.db.connect() as conn:
        return await alert_store.list_alerts(
            conn,
            states=states,
            level=level,
            site=site,
            since=parse_time(since, "since"),
            limit=limit,
        )


@router.get("/alerts/{alert_id}")
async def get_alert(alert_id: str, rt: Rt) -> dict[str, Any]:
    async with rt.db.connect() as conn:
        rows = await alert_store.list_alerts_by_id(conn, alert_id)
        if not rows:
            raise HTTPException(404, f"alert {alert_id!r} not found")
        history = await alert_store.alert_history(conn, alert_id)
    return {**rows[0], "history": history}


async def _act(coro: Any) -> None:
    try:
        await coro
    except NotFoundError as err:
        raise HTTPException(404, str(err)) from err
    except ConflictError as err:
        raise HTTPException(409, str(err)) from err


@router.post("/alerts/{alert_id}/ack")
async def ack(
    alert_id: str, rt: Rt, who: Annotated[str, Depends(actor)], body: AckIn | None = None
) -> dict[str, Any]:
    body = body or AckIn()
    await _act(rt.service.acknowledge(alert_id, body.by or who, body.note))
    return await get_alert(alert_id, rt)


@router.post("/alerts/{alert_id}/dispose")
async def dispose(
    alert_id: str, body: DisposeIn, rt: Rt, who: Annotated[str, Depends(actor)]
) -> dict[str, Any]:
    await _act(rt.service.dispose(alert_id, body.by or who, body.reason_code, body.note))
    return await get_alert(alert_id, rt)


@router.post("/alerts/{alert_id}/disposing")
async def disposing(
    alert_id: str, rt: Rt, who: Annotated[str, Depends(actor)], body: NoteIn | None = None
) -> dict[str, Any]:
    """处置中: an acknowledged alert is being handled."""
    body = body or NoteIn()
    by = body.by or who
    await _act(
        rt.service.act(alert_id, lambda a, now: workflow.start_disposal(a, by, now, body.note))
    )
    return await get_alert(alert_id, rt)


@router.post("/alerts/{alert_id}/review")
async def review(
    alert_id: str, rt: Rt, who: Annotated[str, Depends(actor)], body: NoteIn | None = None
) -> dict[str, Any]:
    """复核: someone other than who closed it reviews a closed alert."""
    body = body or NoteIn()
    by = body.by or who
    await _act(rt.service.act(alert_id, lambda a, now: workflow.review(a, by, now, body.note)))
    return await get_alert(alert_id, rt)


@router.post("/alerts/{alert_id}/comments")
async def add_comment(
    alert_id: str, body: CommentIn, rt: Rt, who: Annotated[str, Depends(actor)]
) -> dict[str, Any]:
    by = body.by or who
    await _act(rt.service.act(alert_id, lambda a, now: workflow.comment(a, by, now, body.text)))
    return await get_alert(alert_id, rt)


@router.post("/alerts/{alert_id}/assign")
async def assign(
    alert_id: str, body: AssignIn, rt: Rt, who: Annotated[str, Depends(actor)]
) -> dict[str, Any]:
    by = body.by or who
    await _act(rt.service.act(alert_id, lambda a, now: workflow.assign(a, by, now, body.assignee)))
    return await get_alert(alert_id, rt)
