"""Reading ingest over HTTP, rejects, and reading queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, HTTPException, Query, Request

from ingest.raw import RawMessage
from monitor.api.deps import parse_time, runtime, tenant_of, visible
from monitor.app import Runtime
from monitor.clock import to_datetime
from monitor.store.readings import query_readings
from monitor.store.rejects import list_rejects

router = APIRouter(prefix="/api/v1", tags=["readings"])
Rt = Annotated[Runtime, Depends(runtime)]


@router.post("/readings")
async def ingest_readings(request: Request, rt: Rt, backfill: bool = False) -> dict[str, Any]:
    """Take one reading or an array of them (the MQTT payload format).  Answers once the
    valid readings are stored, with the count accepted and a reason for each rejected one.
    On a gateway it answers once Kafka has acknowledged the readings (validation then happens
    on the processors: rejects go to the rejects table and the dead-letter topic).
    ``backfill=true`` ingests history: stored, judged as retrospective alerts that do not
    touch the live state and never page anyone."""
    body = await request.body()
    msg = RawMessage(
        body, "http", rt.clock.now(), topic=None, backfill=backfill, tenant=tenant_of(request)
    )
    if rt.role == "processor":
        raise HTTPException(409, "this node is a processor; send readings to a gateway")
    if rt.forwarder is not None:
        if not rt.forwarder.ready:
            raise HTTPException(503, f"input refused: {rt.forwarder.last_error}")
        try:
            forwarded = await rt.forwarder.forward_and_wait(msg)
        except (KafkaError, TimeoutError) as err:
            raise HTTPException(503, f"input refused: Kafka did not acknowledge ({err})") from err
        return {"forwarded": forwarded.readings, "records": forwarded.records}
    outcome = await rt.pipeline.submit_and_wait(msg)
    return {
        "accepted": outcome.accepted,
        "rejected": len(outcome.rejects),
        "rejects": [
            {"reason": r.reason, "detail": r.detail, "raw": r.raw} for r in outcome.rejects
        ],
    }


@router.get("/rejects")
async def rejects(
    request: Request,
    rt: Rt,
    since: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[dict[str, Any]]:
    if tenant_of(request) is not None:
        raise HTTPException(403, "rejected input is for city roles")
    async with rt.db.connect() as conn:
        return await list_rejects(conn, parse_time(since, "since"), limit)


@router.get("/sensors/{sensor_id}/readings")
async def sensor_readings(
    request: Request,
    sensor_id: str,
    rt: Rt,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> dict[str, Any]:
    key = rt.registry.keys.get(sensor_id)
    if key is None or not visible(request, rt.registry.sensors[sensor_id].site):
        raise HTTPException(404, f"sensor {sensor_id!r} not found")
    end = parse_time(to, "to") or to_datetime(rt.clock.now())
    start = parse_time(from_, "from") or end - timedelta(hours=24)
    if start >= end:
        raise HTTPException(422, "from must be before to")
    async with rt.db.connect() as conn:
        rows = await query_readings(conn, key, start, end, limit)
    return {"sensor": sensor_id, "from": start, "to": end, "readings": rows}
