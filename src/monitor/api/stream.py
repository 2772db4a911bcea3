"""Live stream (Server-Sent Events) of alert events (``event: alert``) and site risk changes
(``event: risk``), filterable by tenant, site and level."""

from __future__ import annotations

import asyncio
import calendar
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from alerts.model import AlertEvent, alert_view
from alerts.risk import SiteRisk
from monitor.api.deps import runtime, tenant_of
from monitor.app import Runtime
from monitor.clock import to_datetime
from monitor.store import alerts as alert_store

router = APIRouter(prefix="/api/v1", tags=["stream"])
Rt = Annotated[Runtime, Depends(runtime)]
KEEPALIVE_S = 15.0
WAKE_S = 0.5  # how often an idle stream looks whether the node is stopping
REPLAY_MAX = 10_000  # events replayed after a reconnect; beyond, the client reloads


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


def sse_alert(event: AlertEvent) -> bytes:
    """An alert event as SSE; its id (the event's processing time in microseconds) is what a
    reconnecting client sends back as ``Last-Event-ID``: the events from that time on are
    replayed (an event of the same microsecond may come twice; the client drops repeats)."""
    at = to_datetime(event.at)  # as the store keeps it: whole microseconds
    micros = calendar.timegm(at.utctimetuple()) * 1_000_000 + at.microsecond
    return b"event: alert\nid: %d\ndata: " % micros + event_json(event) + b"\n\n"


def _stopping(request: Request) -> bool:
    """The node is stopping: end the stream (the client reconnects to the next instance)."""
    server = getattr(request.app.state, "server", None)
    return bool(server is not None and server.should_exit)


def _event_time(value: str | None) -> float | None:
    if not value:
        return None
    if not value.isdigit():
        raise HTTPException(422, f"Last-Event-ID {value[:40]!r} is not an event id of this stream")
    return int(value) / 1e6


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
    last_event_id: Annotated[
        str | None,
        Query(description="replay from this event id (as the Last-Event-ID header does)"),
    ] = None,
) -> StreamingResponse:
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=10_000)
    tenant = tenant_of(request) or tenant  # an enterprise token sees its own alerts only
    resume = _event_time(request.headers.get("last-event-id") or last_event_id)

    def wanted(event: AlertEvent) -> bool:
        a = event.alert
        owner = rt.registry.sites.get(a.site)
        if site not in (None, a.site) or (level is not None and int(a.level) > level):
            return False
        return tenant is None or (owner is not None and owner.tenant == tenant)

    def listener(events: list[AlertEvent]) -> None:
        for event in events:
            if wanted(event):
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(sse_alert(event))

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
            yield b": riskmon alert stream\nretry: 2000\n\n"
            if resume is not None:
                async with rt.db.connect() as conn:
                    missed = await alert_store.events_since(conn, resume, REPLAY_MAX + 1)
                for event in missed[:REPLAY_MAX]:
                    if wanted(event):
                        yield sse_alert(event)
                if len(missed) > REPLAY_MAX:  # too much missed: the client reloads its state
                    yield b"event: resync\ndata: {}\n\n"
            quiet = 0.0
            while not await request.is_disconnected() and not _stopping(request):
                try:
                    yield await asyncio.wait_for(queue.get(), WAKE_S)
                    quiet = 0.0
                except TimeoutError:
                    quiet += WAKE_S
                    if quiet >= KEEPALIVE_S:
                        yield b": keep-alive\n\n"
                        quiet = 0.0
        finally:
            rt.pipeline.listeners.remove(listener)
            if risk_changes is not None:
                risk_changes.listeners.remove(on_risk)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
