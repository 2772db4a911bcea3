"""Scores and would-be alerts of anomaly rules in shadow mode."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.store import binary_copy
from monitor.store.db import raw_connection
from rules.anomaly import ShadowScores

_STAGE = "anomaly_scores_columns"  # indices into the names passed with the INSERT
_COLUMNS = "rule, sensor, ts, score, detector, expected, value, would_alert"
_TYPES = ["int2", "int4", "timestamptz", "float4", "int2", "float8", "float8", "int2"]
_INSERT = (
    f"INSERT INTO anomaly_scores ({_COLUMNS}) SELECT (CAST({{rules}} AS text[]))[rule + 1],"
    " (CAST({sensors} AS text[]))[sensor + 1], {ts}, score,"
    " (CAST({detectors} AS text[]))[detector + 1], NULLIF(expected, 'NaN'), value,"
    " would_alert FROM {source} ON CONFLICT DO NOTHING"
)


_UNNEST = (
    "unnest(CAST(:rule AS int2[]), CAST(:sensor AS int4[]), CAST(:ts AS float8[]),"
    " CAST(:score AS real[]), CAST(:detector AS int2[]), CAST(:expected AS float8[]),"
    " CAST(:value AS float8[]), CAST(:would AS int2[])) AS u(" + _COLUMNS + ")"
)


def _insert(source: str, ts: str, mark: str) -> str:
    """The INSERT from ``source``; ``mark`` formats a parameter's name (SQLAlchemy or psycopg)."""
    names = {n: mark.format(n) for n in ("rules", "sensors", "detectors")}
    return _INSERT.format(source=source, ts=ts, **names)


def _columns(scores: list[ShadowScores]) -> tuple[dict[str, list[str]], list[np.ndarray]]:
    """The names (rules, sensors, detectors) and one array per staged column: each batch's
    indices shifted past the names of the batches before it."""
    names: dict[str, list[str]] = {"rules": [], "sensors": [], "detectors": []}
    parts: list[list[np.ndarray]] = [[] for _ in _TYPES]
    for s in scores:
        n = len(s)
        shifted = (
            np.full(n, len(names["rules"])), s.sensor + len(names["sensors"]), s.ts, s.score,
            s.detector + len(names["detectors"]), s.expected, s.value, s.would_alert,
        )  # fmt: skip
        for part, values in zip(parts, shifted, strict=True):
            part.append(values)
        names["rules"].append(s.rule)
        names["sensors"].extend(s.sensors)
        names["detectors"].extend(s.detectors)
    return names, [np.concatenate(p) for p in parts]


async def write_shadow(
    conn: AsyncConnection, scores: list[ShadowScores], copy: bool = True
) -> None:
    """One statement per batch: binary COPY of fixed-width columns (built by numpy, no row
    by row) into a stage, then one INSERT that looks the names up; where COPY breaks the
    connection (PGlite), one INSERT from arrays."""
    scores = [s for s in scores if len(s)]
    if not scores:
        return
    names, columns = _columns(scores)
    if not copy:
        keys = ("rule", "sensor", "ts", "score", "detector", "expected", "value", "would")
        arrays = {k: c.tolist() for k, c in zip(keys, columns, strict=True)}
        sql = _insert(_UNNEST, "to_timestamp(ts)", ":{}")
        await conn.execute(text(sql), {**names, **arrays})
        return
    raw = await raw_connection(conn)
    async with raw.cursor() as cur:
        await cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (rule int2, sensor int4, ts timestamptz,"
            " score real, detector int2, expected float8, value float8, would_alert int2)"
            " ON COMMIT DELETE ROWS"
        )
        async with cur.copy(f"COPY {_STAGE} ({_COLUMNS}) FROM STDIN (FORMAT BINARY)") as out:
            await out.write(binary_copy.encode(list(zip(_TYPES, columns, strict=True))))
        await cur.execute(_insert(_STAGE, "ts", "%({})s"), names)


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

    async def __call__(self, records: list[ShadowScores]) -> None:
        async with self.engine.begin() as conn:
            await write_shadow(conn, records, self.copy)
