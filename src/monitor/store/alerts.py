"""Alerts and their event history in the store."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.kpis import RaisedAlert
from alerts.model import Alert, AlertEvent, AlertState, EventKind, ReasonCode
from monitor.clock import to_datetime, to_epoch
from monitor.model import Category, Level
from monitor.store.migrations import EVENT_KEY

_COLUMNS = (
    "id, fingerprint, rule, sensor, site, category, level, peak_level, state, active, "
    "retrospective, value, evidence, opened_at, updated_at, resolved_at, acked_at, acked_by, "
    "closed_at, closed_by, reason_code, note, suspect, raised_at, tier, assignee, reviewed_at, "
    "reviewed_by, transitions, suppressed"
)
# Derived, on every row the API returns: the ISA-18.2 state (condition × acknowledgement).
# A suppressed alert (alerts.suppression) is not on the operators' list.
_WAITING = "(acked_at IS NULL AND state NOT IN ('closed', 'reviewed') AND NOT suppressed)"
_VIEW = (
    f"{_COLUMNS}, {_WAITING} AS waiting, CASE WHEN suppressed THEN 'suppressed' "
    f"WHEN active AND {_WAITING} THEN 'unack_active' "
    f"WHEN active THEN 'ack_active' WHEN {_WAITING} THEN 'rtn_unack' ELSE 'normal' END "
    "AS isa_state"
)
_UPSERT = text(
    f"""INSERT INTO alerts ({_COLUMNS}) VALUES (:id, :fingerprint, :rule, :sensor, :site,
        :category, :level, :peak_level, :state, :active, :retrospective, :value,
        CAST(:evidence AS jsonb), :opened_at, :updated_at, :resolved_at, :acked_at, :acked_by,
        :closed_at, :closed_by, :reason_code, :note, :suspect, :raised_at, :tier, :assignee,
        :reviewed_at, :reviewed_by, :transitions, :suppressed)
    ON CONFLICT (id) DO UPDATE SET level = EXCLUDED.level,
        peak_level = LEAST(alerts.peak_level, EXCLUDED.peak_level),
        state = CASE
            WHEN alerts.state = 'reviewed' THEN 'reviewed'
            WHEN alerts.state = 'closed' AND EXCLUDED.state <> 'reviewed' THEN 'closed'
            WHEN EXCLUDED.state = 'open' AND alerts.acked_at IS NOT NULL THEN 'acknowledged'
            ELSE EXCLUDED.state END,
        active = EXCLUDED.active, value = EXCLUDED.value,
        evidence = EXCLUDED.evidence, updated_at = EXCLUDED.updated_at,
        resolved_at = EXCLUDED.resolved_at,
        acked_at = COALESCE(alerts.acked_at, EXCLUDED.acked_at),
        acked_by = COALESCE(alerts.acked_by, EXCLUDED.acked_by),
        closed_at = COALESCE(alerts.closed_at, EXCLUDED.closed_at),
        closed_by = COALESCE(alerts.closed_by, EXCLUDED.closed_by),
        reason_code = COALESCE(alerts.reason_code, EXCLUDED.reason_code),
        note = COALESCE(alerts.note, EXCLUDED.note),
        suspect = alerts.suspect OR EXCLUDED.suspect,
        raised_at = CASE WHEN alerts.suppressed AND NOT EXCLUDED.suppressed
            THEN EXCLUDED.raised_at ELSE COALESCE(alerts.raised_at, EXCLUDED.raised_at) END,
        tier = GREATEST(alerts.tier, EXCLUDED.tier),
        assignee = COALESCE(EXCLUDED.assignee, alerts.assignee),
        reviewed_at = COALESCE(alerts.reviewed_at, EXCLUDED.reviewed_at),
        reviewed_by = COALESCE(alerts.reviewed_by, EXCLUDED.reviewed_by),
        transitions = EXCLUDED.transitions, suppressed = EXCLUDED.suppressed
    WHERE EXCLUDED.transitions >= alerts.transitions"""
)
_EVENT = text(
    f"""INSERT INTO alert_events (alert_id, kind, level, previous_level, ts, at, actor, detail)
       VALUES (:alert_id, :kind, :level, :previous_level, :ts, :at, :actor,
               CAST(:detail AS jsonb))
       ON CONFLICT ({EVENT_KEY}) DO NOTHING"""
)


def _dt(value: float | None) -> datetime | None:
    return None if value is None else to_datetime(value)


def _row(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "fingerprint": alert.fingerprint,
        "rule": alert.rule,
        "sensor": alert.sensor,
        "site": alert.site,
        "category": alert.category.value,
        "level": int(alert.level),
        "peak_level": int(alert.peak_level),
        "state": alert.state.value,
        "active": alert.active,
        "retrospective": alert.retrospective,
        "value": alert.value,
        "evidence": json.dumps(alert.evidence, default=str),
        "opened_at": to_datetime(alert.opened_at),
        "updated_at": to_datetime(alert.updated_at),
        "resolved_at": _dt(alert.resolved_at),
        "acked_at": _dt(alert.acked_at),
        "acked_by": alert.acked_by,
        "closed_at": _dt(alert.closed_at),
        "closed_by": alert.closed_by,
        "reason_code": alert.reason_code.value if alert.reason_code else None,
        "note": alert.note,
        "suspect": alert.suspect,
        "raised_at": _dt(alert.raised_at),
        "tier": alert.tier,
        "assignee": alert.assignee,
        "reviewed_at": _dt(alert.reviewed_at),
        "reviewed_by": alert.reviewed_by,
        "transitions": alert.transitions,
        "suppressed": alert.suppressed,
    }


async def write_events(conn: AsyncConnection, events: list[AlertEvent]) -> None:
    """Persist alert changes: the latest row of every alert touched, then the events."""
    if not events:
        return
    latest = {e.alert.id: e.alert for e in events}
    await conn.execute(_UPSERT, [_row(a) for a in latest.values()])
    await conn.execute(
        _EVENT,
        [
            {
                "alert_id": e.alert.id,
                "kind": e.kind.value,
                "level": int(e.level),
                "previous_level": None if e.previous_level is None else int(e.previous_level),
                "ts": to_datetime(e.ts),
                "at": to_datetime(e.at),
                "actor": e.actor,
                "detail": json.dumps(e.detail, default=str),
            }
            for e in events
        ],
    )


def alert_from_row(m: Any) -> Alert:
    return Alert(
        id=m["id"],
        fingerprint=m["fingerprint"],
        rule=m["rule"],
        sensor=m["sensor"],
        site=m["site"],
        category=Category(m["category"]),
        level=Level(m["level"]),
        peak_level=Level(m["peak_level"]),
        opened_at=to_epoch(m["opened_at"]),
        updated_at=to_epoch(m["updated_at"]),
        state=AlertState(m["state"]),
        active=m["active"],
        value=m["value"],
        evidence=m["evidence"] or {},
        retrospective=m["retrospective"],
        resolved_at=_epoch(m["resolved_at"]),
        acked_at=_epoch(m["acked_at"]),
        acked_by=m["acked_by"],
        closed_at=_epoch(m["closed_at"]),
        closed_by=m["closed_by"],
        reason_code=ReasonCode(m["reason_code"]) if m["reason_code"] else None,
        note=m["note"],
        last_ts=_epoch(m.get("last_ts")),
        suspect=m["suspect"],
        raised_at=_epoch(m["raised_at"]),
        tier=m["tier"],
        assignee=m["assignee"],
        reviewed_at=_epoch(m["reviewed_at"]),
        reviewed_by=m["reviewed_by"],
        transitions=m.get("transitions") or 0,
        suppressed=bool(m.get("suppressed")),
    )


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else to_epoch(value)


async def load_active(conn: AsyncConnection, sites: list[str] | None = None) -> list[Alert]:
    """Alerts whose condition still holds; of the given sites only, when given."""
    return await _load(conn, "active", sites)


async def load_waiting(conn: AsyncConnection, sites: list[str] | None = None) -> list[Alert]:
    """Cleared alerts nobody has acknowledged or closed (ISA-18.2 "returned to normal
    unacknowledged"): they stay on the operators' list."""
    return await _load(conn, f"NOT active AND {_WAITING}", sites)


async def load_by_id(conn: AsyncConnection, ids: list[str]) -> list[Alert]:
    """The stored versions of the given alerts (those the store has)."""
    return await _load(conn, "id = ANY(:ids)", None, {"ids": ids})


async def _load(
    conn: AsyncConnection, where: str, sites: list[str] | None, params: dict[str, Any] | None = None
) -> list[Alert]:
    last = "(SELECT max(e.ts) FROM alert_events e WHERE e.alert_id = alerts.id) AS last_ts"
    query = f"SELECT {_COLUMNS}, {last} FROM alerts WHERE {where}"
    if sites is not None:
        query, params = f"{query} AND site = ANY(:sites)", {**(params or {}), "sites": sites}
    result = await conn.execute(text(query), params or {})
    return [alert_from_row(r._mapping) for r in result]


async def get_alert(conn: AsyncConnection, alert_id: str) -> Alert | None:
    row = (
        await conn.execute(text(f"SELECT {_COLUMNS} FROM alerts WHERE id = :id"), {"id": alert_id})
    ).first()
    return None if row is None else alert_from_row(row._mapping)


async def list_alerts(
    conn: AsyncConnection,
    *,
    states: list[str] | None,
    level: int | None,
    site: str | None,
    since: datetime | None,
    limit: int,
    sites: list[str] | None = None,
    sensor: str | None = None,
    category: str | None = None,
) -> list[dict[str, Any]]:
    where, params = ["TRUE"], {"n": limit}
    if states:
        # "waiting" is not a stored state: unacknowledged and not closed, active or not
        wanted = [s for s in states if s != "waiting"]
        either = ["state = ANY(:states)"] if wanted else []
        if "waiting" in states:
            either.append(_WAITING)
        where.append(f"({' OR '.join(either)})")
        params["states"] = wanted  # type: ignore[assignment]
    if level is not None:
        where.append("level = :level")
        params["level"] = level
    for name, value in (("site", site), ("sensor", sensor), ("category", category)):
        if value:
            where.append(f"{name} = :{name}")
            params[name] = value  # type: ignore[assignment]
    if sites is not None:
        where.append("site = ANY(:sites)")
        params["sites"] = sites  # type: ignore[assignment]
    if since is not None:
        where.append("updated_at >= :since")
        params["since"] = since  # type: ignore[assignment]
    result = await conn.execute(
        text(
            f"SELECT {_VIEW} FROM alerts WHERE {' AND '.join(where)} "
            "ORDER BY active DESC, level ASC, opened_at DESC LIMIT :n"
        ),
        params,
    )
    return [dict(r._mapping) for r in result]


async def alert_history(conn: AsyncConnection, alert_id: str) -> list[dict[str, Any]]:
    result = await conn.execute(
        text(
            "SELECT kind, level, previous_level, ts, at, actor, detail FROM alert_events "
            "WHERE alert_id = :id ORDER BY id"
        ),
        {"id": alert_id},
    )
    return [dict(r._mapping) for r in result]


async def events_since(
    conn: AsyncConnection, since: float, limit: int, sites: list[str] | None = None
) -> list[AlertEvent]:
    """The events stored at or after ``since`` (processing time), oldest first, each with its
    alert as it is now (the live stream's replay after a reconnect)."""
    alert_columns = ", ".join(f"a.{c}" for c in _COLUMNS.split(", "))
    where = "e.at >= :since" + ("" if sites is None else " AND a.site = ANY(:sites)")
    result = await conn.execute(
        text(
            "SELECT e.kind AS e_kind, e.level AS e_level, e.previous_level AS e_previous, "
            "e.ts AS e_ts, e.at AS e_at, e.actor AS e_actor, e.detail AS e_detail, "
            f"{alert_columns} "
            f"FROM alert_events e JOIN alerts a ON a.id = e.alert_id WHERE {where} "
            "ORDER BY e.at, e.id LIMIT :n"
        ),
        {"since": to_datetime(since), "n": limit, "sites": sites},
    )
    events = []
    for row in result:
        m = row._mapping
        previous = m["e_previous"]
        events.append(
            AlertEvent(
                kind=EventKind(m["e_kind"]),
                alert=alert_from_row(m),
                level=Level(m["e_level"]),
                previous_level=None if previous is None else Level(previous),
                ts=to_epoch(m["e_ts"]),
                at=to_epoch(m["e_at"]),
                actor=m["e_actor"],
                detail=m["e_detail"] or {},
            )
        )
    return events


async def list_alerts_by_id(conn: AsyncConnection, alert_id: str) -> list[dict[str, Any]]:
    result = await conn.execute(
        text(f"SELECT {_VIEW} FROM alerts WHERE id = :id"), {"id": alert_id}
    )
    return [dict(r._mapping) for r in result]


_CHANGES = ("opened", "escalated", "de-escalated", "resolved")


async def raised_alerts(conn: AsyncConnection, start: datetime, end: datetime) -> list[RaisedAlert]:
    """The live alerts (not retrospective, not suppressed) active at some time in [start, end),
    with the event times of their level changes, for the alarm-load KPIs (``alerts.kpis``)."""
    result = await conn.execute(
        text(
            """SELECT a.rule, a.sensor, a.site, a.peak_level,
                      extract(epoch FROM COALESCE(a.raised_at, a.opened_at)) AS raised,
                      extract(epoch FROM COALESCE(a.resolved_at, a.closed_at)) AS cleared,
                      array_remove(array_agg(extract(epoch FROM e.ts)), NULL) AS changes
               FROM alerts a LEFT JOIN alert_events e
                 ON e.alert_id = a.id AND e.kind = ANY(:kinds)
               WHERE NOT a.retrospective AND NOT a.suppressed
                 AND COALESCE(a.raised_at, a.opened_at) < :e
                 AND COALESCE(a.resolved_at, a.closed_at, :e) >= :s
               GROUP BY a.id"""
        ),
        {"s": start, "e": end, "kinds": list(_CHANGES)},
    )
    return [
        RaisedAlert(
            (r.rule, r.sensor, r.site),
            int(r.peak_level),
            float(r.raised),
            None if r.cleared is None else float(r.cleared),
            tuple(float(t) for t in r.changes),
        )
        for r in result
    ]


async def site_history(conn: AsyncConnection, now: datetime) -> dict[str, dict[str, int]]:
    """Per site: process warnings opened, and closed as real hazards, in the last 7 and 30
    days (retrospective alerts left out)."""
    rows = await conn.execute(
        text(
            """SELECT site,
                 count(*) FILTER (WHERE opened_at >= :d7) AS warnings_7d,
                 count(*) FILTER (WHERE opened_at >= :d30) AS warnings_30d,
                 count(*) FILTER (WHERE reason_code = 'real_hazard_handled' AND closed_at >= :d7)
                   AS real_hazards_7d,
                 count(*) FILTER (WHERE reason_code = 'real_hazard_handled' AND closed_at >= :d30)
                   AS real_hazards_30d
               FROM alerts
               WHERE category = 'process' AND NOT retrospective
                 AND (opened_at >= :d30 OR closed_at >= :d30)
               GROUP BY site"""
        ),
        {"d7": now - timedelta(days=7), "d30": now - timedelta(days=30)},
    )
    return {r.site: {k: int(v) for k, v in r._mapping.items() if k != "site"} for r in rows}
