"""Live stream (Server-Sent Events) of alert events (``event: alert``) and site risk changes
(``event: risk``), filterable by tenant, site and level."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from alerts.model import AlertEvent, alert_view
from alerts.risk import SiteRisk
from monitor.api.deps import runtime, tenant_of
from monitor.app import Runtime
from monitor.clock import to_datetime

router = APIRouter(prefix="/api/v1", tags=["stream"])
Rt = Annotated[Runtime, Depends(runtime)]
KEEPALIVE_S = 15.0


def event_json(event: AlertEvent) -> bytes:
    """The event as it happened: its alert is the snapshot taken at the transition."""
    return orjson.dumps(
        {
            "kind": event.kind.value,
            "at": to_datetime(event.at).isoformat(),
            "ts": to_datetime(event.ts).isoformat(),
            "level": int(event.level),
            "previous_level": None if event.previous_level is None else int(event.previous_level),
            "actor": event.actor,
            "detail": event.detail,
            "alert": alert_view(event.alert),
        },
        default=str,
    )


@router.get("/stream")
async def stream(
    request: Request,
    rt: Rt,
    tenant: str | None = None,
    site: str | None = None,
    level: Annotated[int | None, Query(ge=1, le=4, description="this level or more severe")] = None,
    risk: Annotated[
        bool, Query(description="also site risk changes (event: risk); off: alert events only")
    ] = False,
) -> StreamingResponse:
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=10_000)
    tenant = tenant_of(request) or tenant  # an enterprise token sees its own alerts only

    def listener(events: list[AlertEvent]) -> None:
        for event in events:
            a = event.alert
            owner = rt.registry.sites.get(a.site)
            if site not in (None, a.site) or (level is not None and int(a.level) > level):
                continue
            if tenant is not None and (owner is None or owner.tenant != tenant):
                continue
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(b"event: alert\ndata: " + event_json(event) + b"\n\n")

    def on_risk(change: SiteRisk, district: str | None) -> None:
        """A site's risk changed (``event: risk``); ``level`` filters it as it does alerts."""
        if site not in (None, change.site) or (level is not None and change.level > level):
            return
        if tenant is not None and change.tenant != tenant:
            return
        body = orjson.dumps({**change.as_dict(), "district": district}, default=str)
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(b"event: risk\ndata: " + body + b"\n\n")

    async def body() -> AsyncIterator[bytes]:
        rt.pipeline.listeners.append(listener)
        risk_changes = rt.risk if risk else None
        if risk_changes is not None:
            risk_changes.listeners.append(on_risk)
        try:
            yield b": riskmon alert stream\n\n"
            while not await request.is_disconnected():
                try:
                    yield await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield b": keep-alive\n\n"
        finally:
            rt.pipeline.listeners.remove(listener)
            if risk_changes is not None:
                risk_changes.listeners.remove(on_risk)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
