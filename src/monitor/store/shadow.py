"""Scores and would-be alerts of anomaly rules in shadow mode."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.clock import to_datetime
from monitor.store.db import raw_connection
from rules.anomaly import ShadowRecord

_STAGE = "anomaly_scores_stage"
_COLUMNS = "rule, sensor, ts, score, detector, expected, value, would_alert"
_INSERT = (
    f"INSERT INTO anomaly_scores ({_COLUMNS}) SELECT {_COLUMNS} FROM {{source}}"
    " ON CONFLICT DO NOTHING"
)
_UNNEST = (
    "unnest(CAST(:rule AS text[]), CAST(:sensor AS text[]), CAST(:ts AS timestamptz[]),"
    " CAST(:score AS real[]), CAST(:detector AS text[]), CAST(:expected AS float8[]),"
    " CAST(:value AS float8[]), CAST(:would AS int2[])) AS u(" + _COLUMNS + ")"
)


def _rows(records: list[ShadowRecord]) -> list[tuple[Any, ...]]:
    return [
        (r.rule, r.sensor, to_datetime(r.ts), r.score, r.detector,
         r.expected if r.expected == r.expected else None, r.value, r.would_alert)
        for r in records
    ]  # fmt: skip


async def write_shadow(
    conn: AsyncConnection, records: list[ShadowRecord], copy: bool = True
) -> None:
    """One statement per batch: binary COPY into a stage, then one INSERT (or, where COPY
    breaks the connection, PGlite, one INSERT from arrays); never a statement per row."""
    if not records:
        return
    rows = _rows(records)
    if not copy:
        names = ("rule", "sensor", "ts", "score", "detector", "expected", "value", "would")
        params = {name: [row[i] for row in rows] for i, name in enumerate(names)}
        await conn.execute(text(_INSERT.format(source=_UNNEST)), params)
        return
    raw = await raw_connection(conn)
    async with raw.cursor() as cur:
        await cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (rule text, sensor text, ts timestamptz,"
            " score real, detector text, expected float8, value float8, would_alert int2)"
            " ON COMMIT DELETE ROWS"
        )
        async with cur.copy(f"COPY {_STAGE} ({_COLUMNS}) FROM STDIN (FORMAT BINARY)") as out:
            out.set_types(
                ["text", "text", "timestamptz", "float4", "text", "float8", "float8", "int2"]
            )
            for row in rows:
                await out.write_row(row)
        await cur.execute(_INSERT.format(source=_STAGE))


async def shadow_report(
    conn: AsyncConnection,
    rule: str,
    since: datetime | None,
    sensor: str | None,
    limit: int,
    sensors: list[str] | None = None,
    opening_level: int = 4,
) -> dict[str, Any]:
    """Would-be alerts by level, readings scored, and the latest scores (of ``sensors`` only,
    when given: an enterprise's own).  ``would_be_alerts``: the readings at which a live rule
    would have opened an alert (``opening_level``, its first level); per 1,000 sensor-days of
    the sensors' scored spans (first to last scored reading)."""
    where = "rule = :rule AND (CAST(:since AS timestamptz) IS NULL OR ts >= :since)"
    where += " AND (CAST(:sensor AS text) IS NULL OR sensor = :sensor)"
    where += " AND (CAST(:scoped AS boolean) IS NOT TRUE OR sensor = ANY(:sensors))"
    params = {
        "rule": rule,
        "since": since,
        "sensor": sensor,
        "scoped": sensors is not None,
        "sensors": sensors or [],
    }
    counts = (
        await conn.execute(
            text(
                f"""SELECT count(*), count(*) FILTER (WHERE would_alert = 4),
                           count(*) FILTER (WHERE would_alert = 3), max(score)
                    FROM anomaly_scores WHERE {where}"""
            ),
            params,
        )
    ).one()
    opened, spans = (
        await conn.execute(
            text(
                f"""SELECT COALESCE(sum(opened), 0), COALESCE(sum(span), 0) FROM (
                      SELECT count(*) FILTER (WHERE would_alert = :opening) AS opened,
                             extract(epoch FROM max(ts) - min(ts)) AS span
                      FROM anomaly_scores WHERE {where} GROUP BY sensor) per_sensor"""
            ),
            {**params, "opening": opening_level},
        )
    ).one()
    sensor_days = float(spans) / 86400
    rows = await conn.execute(
        text(
            f"""SELECT sensor, ts, score, detector, expected, value, would_alert
                FROM anomaly_scores WHERE {where} ORDER BY ts DESC, sensor LIMIT :limit"""
        ),
        {**params, "limit": limit},
    )
    return {
        "rule": rule,
        "readings_scored": counts[0],
        "would_alert": {"4": counts[1], "3": counts[2]},
        "max_score": counts[3],
        "would_be_alerts": int(opened),
        "sensor_days": round(sensor_days, 3),
        "would_be_alerts_per_1000_sensor_days": (
            round(1000 * int(opened) / sensor_days, 3) if sensor_days else None
        ),
        "scores": [
            {
                "sensor": r.sensor,
                "ts": r.ts.isoformat(),
                "score": r.score,
                "detector": r.detector,
                "expected": r.expected,
                "value": r.value,
                "would_alert": r.would_alert,
            }
            for r in rows
        ],
    }


class ShadowWriter:
    """The pipeline's sink for shadow-mode scores."""

    def __init__(self, engine: AsyncEngine, copy: bool = True) -> None:
        self.engine, self.copy = engine, copy

    async def __call__(self, records: list[ShadowRecord]) -> None:
        async with self.engine.begin() as conn:
            await write_shadow(conn, records, self.copy)
