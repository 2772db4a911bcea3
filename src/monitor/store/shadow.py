"""Scores and would-be alerts of anomaly rules in shadow mode."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.clock import to_datetime
from rules.anomaly import ShadowRecord


async def write_shadow(conn: AsyncConnection, records: list[ShadowRecord]) -> None:
    if not records:
        return
    await conn.execute(
        text(
            """INSERT INTO anomaly_scores
                 (rule, sensor, ts, score, detector, expected, value, would_alert)
               VALUES (:rule, :sensor, :ts, :score, :detector, :expected, :value, :would)
               ON CONFLICT DO NOTHING"""
        ),
        [
            {
                "rule": r.rule,
                "sensor": r.sensor,
                "ts": to_datetime(r.ts),
                "score": r.score,
                "detector": r.detector,
                "expected": r.expected if r.expected == r.expected else None,
                "value": r.value,
                "would": r.would_alert,
            }
            for r in records
        ],
    )


async def shadow_report(
    conn: AsyncConnection,
    rule: str,
    since: datetime | None,
    sensor: str | None,
    limit: int,
    sensors: list[str] | None = None,
) -> dict[str, Any]:
    """Would-be alerts by level, readings scored, and the latest scores (of ``sensors`` only,
    when given: an enterprise's own)."""
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

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def __call__(self, records: list[ShadowRecord]) -> None:
        async with self.engine.begin() as conn:
            await write_shadow(conn, records)
