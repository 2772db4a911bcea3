"""Alarm KPIs (DOMAIN.md §1: alarm quality is a first-class goal): alert load per 10 minutes,
flood periods (more than 10 alerts in 10 minutes), the chattering top-N, stale alerts, and mean
time to acknowledge and to dispose per level.  Retrospective alerts are left out."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy import text

from monitor.api.contract import TimeText
from monitor.api.deps import parse_time, runtime, tenant_of
from monitor.app import Runtime
from monitor.clock import to_datetime

router = APIRouter(prefix="/api/v1", tags=["reports"])
Rt = Annotated[Runtime, Depends(runtime)]
FLOOD = 10


@router.get("/reports/alarm-load")
async def alarm_load(
    request: Request,
    rt: Rt,
    since: TimeText | None = None,
    until: TimeText | None = None,
    top: Annotated[int, Query(ge=1, le=100)] = 10,
    stale_after_h: Annotated[float, Query(gt=0, le=24 * 366)] = 24.0,
) -> dict[str, Any]:
    if tenant_of(request) is not None:
        raise HTTPException(403, "alarm-load reports are for city roles")
    end = parse_time(until, "until") or to_datetime(rt.clock.now())
    start = parse_time(since, "since") or end - timedelta(days=1)
    window = {"s": start, "e": end}
    async with rt.db.connect() as conn:
        buckets = [
            dict(r._mapping)
            for r in await conn.execute(
                text(
                    "SELECT date_bin('10 minutes', raised, TIMESTAMPTZ '2000-01-01') AS bucket, "
                    "count(*) AS alerts FROM (SELECT COALESCE(raised_at, opened_at) AS raised "
                    "FROM alerts WHERE NOT retrospective) a "
                    "WHERE raised >= :s AND raised < :e GROUP BY 1 ORDER BY 1"
                ),
                window,
            )
        ]
        chattering = [
            dict(r._mapping)
            for r in await conn.execute(
                text(
                    "SELECT rule, sensor, site, count(*) AS alerts FROM alerts "
                    "WHERE NOT retrospective AND COALESCE(raised_at, opened_at) >= :s "
                    "AND COALESCE(raised_at, opened_at) < :e "
                    "GROUP BY rule, sensor, site ORDER BY alerts DESC, rule LIMIT :n"
                ),
                {**window, "n": top},
            )
        ]
        stale = [
            dict(r._mapping)
            for r in await conn.execute(
                text(
                    "SELECT id, rule, sensor, site, level, state, raised_at FROM alerts "
                    "WHERE NOT retrospective AND state IN ('open', 'acknowledged', 'disposing') "
                    "AND COALESCE(raised_at, opened_at) < :cut ORDER BY raised_at"
                ),
                {"cut": end - timedelta(hours=stale_after_h)},
            )
        ]
        times = [
            dict(r._mapping)
            for r in await conn.execute(
                text(
                    "SELECT level, count(*) AS alerts, "
                    "CAST(avg(extract(epoch FROM acked_at - raised_at)) AS float8) AS mtta_s, "
                    "CAST(avg(extract(epoch FROM closed_at - raised_at)) AS float8) AS mttr_s "
                    "FROM alerts WHERE NOT retrospective AND raised_at >= :s AND raised_at < :e "
                    "GROUP BY level ORDER BY level"
                ),
                window,
            )
        ]
    return {
        "from": start,
        "to": end,
        "per_10_minutes": buckets,
        "floods": [b for b in buckets if b["alerts"] > FLOOD],
        "chattering": chattering,
        "stale": stale,
        "per_level": times,
    }
