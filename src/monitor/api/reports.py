"""Alarm KPIs (DOMAIN.md §1 and 4b: alarm quality is a first-class goal): the ISA-18.2 / EEMUA
191 figures of ``alerts.kpis`` (alerts per 10 minutes, floods and the time in flood,
chattering, stale, priority mix, bad actors), the stale alerts themselves, and mean time to
acknowledge and to dispose per level.  Retrospective alerts are left out."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy import text

from alerts import kpis
from monitor.api.contract import TimeText
from monitor.api.deps import parse_time, runtime, tenant_of
from monitor.app import Runtime
from monitor.clock import to_datetime
from monitor.store import alerts as alert_store

router = APIRouter(prefix="/api/v1", tags=["reports"])
Rt = Annotated[Runtime, Depends(runtime)]


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
    if start >= end:
        raise HTTPException(422, "since must be before until")
    window = {"s": start, "e": end}
    async with rt.db.connect() as conn:
        raised = await alert_store.raised_alerts(conn, start, end)
        stale = [
            dict(r._mapping)
            for r in await conn.execute(
                text(
                    "SELECT id, rule, sensor, site, level, state, raised_at FROM alerts "
                    "WHERE NOT retrospective AND NOT suppressed "
                    "AND state IN ('open', 'acknowledged', 'disposing') "
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
                    "FROM alerts WHERE NOT retrospective AND NOT suppressed "
                    "AND raised_at >= :s AND raised_at < :e "
                    "GROUP BY level ORDER BY level"
                ),
                window,
            )
        ]
    figures = kpis.alarm_load(raised, start.timestamp(), end.timestamp(), top, stale_after_h * 3600)
    for row in (*figures["per_10_minutes"], *figures["floods"]):
        for name in ("bucket", "from", "to"):
            if name in row:
                row[name] = to_datetime(row[name])
    return {
        "from": start,
        "to": end,
        **figures,
        "stale_count": figures["stale"],
        "stale": stale,
        "per_level": times,
    }
