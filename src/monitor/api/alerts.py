"""Alerts: list, read with history, acknowledge, dispose."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from monitor.api.contract import TimeText
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
from monitor.model import Category
from monitor.schemas import AckIn, AssignIn, CommentIn, DisposeIn, NoteIn
from monitor.store import alerts as alert_store

router = APIRouter(prefix="/api/v1", tags=["alerts"])
Rt = Annotated[Runtime, Depends(runtime)]
ACTIVE = ["open", "acknowledged", "disposing"]
STATES = {"open", "acknowledged", "disposing", "resolved", "closed", "reviewed", "waiting"}
_STATE = f" *({'|'.join(sorted(STATES | {'active'}))}) *"
STATE_LIST = f"^({_STATE}(,{_STATE})*)?$"  # declared; checked below with a helpful message


@router.get("/alerts")
async def list_alerts(
    request: Request,
    rt: Rt,
    state: Annotated[
        str | None,
        Query(
            json_schema_extra={"pattern": STATE_LIST},
            description="comma-separated states; 'active' = open,acknowledged,disposing; "
            "'waiting' = nobody has acknowledged or closed it, active or returned to normal",
        ),
    ] = None,
    level: Annotated[int | None, Query(ge=1, le=4)] = None,
    site: str | None = None,
    sensor: str | None = None,
    category: Category | None = None,
    since: TimeText | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[dict[str, Any]]:
    states = None
    if state:
        states = [
            s
            for part in state.split(",")
            for s in (ACTIVE if part.strip() == "active" else [part.strip()])
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
            sensor=sensor,
            category=None if category is None else category.value,
            since=parse_time(since, "since"),
            limit=limit,
            sites=_sites(request, rt),
        )


def _sites(request: Request, rt: Runtime) -> list[str] | None:
    tenant = tenant_of(request)
    if tenant is None:
        return None
    return [s.id for s in rt.registry.sites.values() if s.tenant == tenant]


@router.get("/alerts/{alert_id}")
async def get_alert(alert_id: str, rt: Rt, request: Request) -> dict[str, Any]:
    """An alert with its history; 404 also for an alert of another enterprise."""
    async with rt.db.connect() as conn:
        rows = await alert_store.list_alerts_by_id(conn, alert_id)
        if not rows or not visible(request, rows[0]["site"]):
            raise HTTPException(404, f"alert {alert_id!r} not found")
        history = await alert_store.alert_history(conn, alert_id)
    return {**rows[0], "history": history}


async def check_visible(alert_id: str, request: Request) -> None:
    """An enterprise token acting on another enterprise's alert gets 404."""
    if tenant_of(request) is None:
        return
    rt = runtime(request)
    async with rt.db.connect() as conn:
        rows = await alert_store.list_alerts_by_id(conn, alert_id)
    if not rows or not visible(request, rows[0]["site"]):
        raise HTTPException(404, f"alert {alert_id!r} not found")


async def _act(request: Request, rt: Runtime, alert_id: str, coro: Any) -> dict[str, Any]:
    """Run an operator action (``monitor.operations``) and answer with the alert as it is."""
    with as_http():
        await coro
    return await get_alert(alert_id, rt, request)


Who = Annotated[str, Depends(actor)]
VISIBLE = [Depends(check_visible)]


@router.post("/alerts/{alert_id}/ack", dependencies=VISIBLE)
async def ack(
    request: Request, alert_id: str, rt: Rt, who: Who, body: AckIn | None = None
) -> dict[str, Any]:
    """签收: acknowledge an alert nobody has acknowledged, active or already cleared."""
    body = body or AckIn()
    by = on_behalf(request, body.by, who)
    return await _act(request, rt, alert_id, rt.ops.acknowledge(alert_id, by, body.note))


@router.post(
    "/alerts/{alert_id}/dispose",
    dependencies=VISIBLE,
    responses={409: {"description": "closed already, or its condition still holds"}},
)
async def dispose(
    request: Request, alert_id: str, body: DisposeIn, rt: Rt, who: Who
) -> dict[str, Any]:
    """消警: close with a reason code and a note.  While the condition still holds the close is
    refused with 409 (naming the value and the set-point) unless ``force`` with a
    ``force_reason``, both kept in the history."""
    by = on_behalf(request, body.by, who)
    return await _act(
        request,
        rt,
        alert_id,
        rt.ops.dispose(
            alert_id,
            by,
            body.reason_code,
            body.note,
            force=body.force,
            force_reason=body.force_reason,
        ),
    )


@router.post("/alerts/{alert_id}/disposing", dependencies=VISIBLE)
async def disposing(
    request: Request, alert_id: str, rt: Rt, who: Who, body: NoteIn | None = None
) -> dict[str, Any]:
    """处置中: an acknowledged alert is being handled."""
    body = body or NoteIn()
    by = on_behalf(request, body.by, who)
    return await _act(request, rt, alert_id, rt.ops.start_disposal(alert_id, by, body.note))


@router.post("/alerts/{alert_id}/review", dependencies=VISIBLE)
async def review(
    request: Request, alert_id: str, rt: Rt, who: Who, body: NoteIn | None = None
) -> dict[str, Any]:
    """复核: someone other than who closed it reviews a closed alert."""
    body = body or NoteIn()
    by = on_behalf(request, body.by, who)
    return await _act(request, rt, alert_id, rt.ops.review(alert_id, by, body.note))


@router.post("/alerts/{alert_id}/comments", dependencies=VISIBLE)
async def add_comment(
    request: Request, alert_id: str, body: CommentIn, rt: Rt, who: Who
) -> dict[str, Any]:
    by = on_behalf(request, body.by, who)
    return await _act(request, rt, alert_id, rt.ops.comment(alert_id, by, body.text))


@router.post("/alerts/{alert_id}/assign", dependencies=VISIBLE)
async def assign(
    request: Request, alert_id: str, body: AssignIn, rt: Rt, who: Who
) -> dict[str, Any]:
    by = on_behalf(request, body.by, who)
    return await _act(request, rt, alert_id, rt.ops.assign(alert_id, by, body.assignee))
