"""Reading ingest over HTTP, rejects, and reading queries."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, HTTPException, Query, Request

from ingest.raw import RawMessage
from monitor.api.contract import TimeText
from monitor.api.deps import parse_time, runtime, tenant_of, visible
from monitor.app import Runtime
from monitor.clock import to_datetime
from monitor.store.rejects import list_rejects
from monitor.store.series import pick_bucket, query_series

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
    failure = rt.pipeline.store_failure
    if failure is not None:
        raise HTTPException(503, f"input refused: the store is failing ({failure.reason})")
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
    since: TimeText | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[dict[str, Any]]:
    if tenant_of(request) is not None:
        raise HTTPException(403, "rejected input is for city roles")
    async with rt.db.connect() as conn:
        return await list_rejects(conn, parse_time(since, "since"), limit)


def _range(from_: str | None, to: str | None, rt: Runtime) -> tuple[datetime, datetime]:
    end = parse_time(to, "to") or to_datetime(rt.clock.now())
    start = parse_time(from_, "from") or end - timedelta(hours=24)
    if start >= end:
        raise HTTPException(422, "from must be before to")
    return start, end


BucketQuery = Annotated[
    Literal["auto", "raw", "1m", "1h"],
    Query(description="raw readings, 1 min or 1 h rollups; auto picks by the range"),
]


@router.get("/sensors/{sensor_id}/readings")
async def sensor_readings(
    request: Request,
    sensor_id: str,
    rt: Rt,
    from_: Annotated[TimeText | None, Query(alias="from")] = None,
    to: TimeText | None = None,
    bucket: BucketQuery = "auto",
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> dict[str, Any]:
    """One sensor's readings; long ranges come from the rollups (``value`` is the bucket's
    mean, with ``min``, ``max``, ``last`` and ``count``)."""
    key = rt.registry.keys.get(sensor_id)
    if key is None or not visible(request, rt.registry.sensors[sensor_id].site):
        raise HTTPException(404, f"sensor {sensor_id!r} not found")
    start, end = _range(from_, to, rt)
    interval = rt.registry.sensors[sensor_id].expected_interval_s
    chosen = pick_bucket(start, end, interval) if bucket == "auto" else bucket
    async with rt.db.connect() as conn:
        rows = (await query_series(conn, [key], start, end, chosen, limit))[key]
    return {"sensor": sensor_id, "from": start, "to": end, "bucket": chosen, "readings": rows}


@router.get("/sites/{site_id}/readings")
async def site_readings(
    request: Request,
    site_id: str,
    rt: Rt,
    from_: Annotated[TimeText | None, Query(alias="from")] = None,
    to: TimeText | None = None,
    kind: str | None = None,
    bucket: BucketQuery = "auto",
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 100_000,
) -> dict[str, Any]:
    """Every sensor of a site (optionally of one kind) over one range, in one query."""
    if site_id not in rt.registry.sites or not visible(request, site_id):
        raise HTTPException(404, f"site {site_id!r} not found")
    sensors = [
        s for s in rt.registry.sensors.values()
        if s.site == site_id and (kind is None or s.kind == kind)
    ]  # fmt: skip
    start, end = _range(from_, to, rt)
    interval = min((s.expected_interval_s for s in sensors), default=60.0)
    chosen = pick_bucket(start, end, interval) if bucket == "auto" else bucket
    keys = [rt.registry.keys[s.id] for s in sensors]
    async with rt.db.connect() as conn:
        rows = await query_series(conn, keys, start, end, chosen, limit) if keys else {}
    return {
        "site": site_id,
        "from": start,
        "to": end,
        "bucket": chosen,
        "series": {s.id: rows.get(rt.registry.keys[s.id], []) for s in sensors},
    }
