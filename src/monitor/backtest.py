"""Backtest: what a proposed rule would have raised on the stored history, next to what the
rule in force raises on the same readings.  Read-only: nothing is written.

The same evaluators and alert tracker as production run over the readings in event-time order,
in chunks, with fresh state.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from alerts.model import EventKind
from alerts.tracker import AlertTracker
from monitor.clock import to_datetime
from monitor.errors import ConfigError
from monitor.model import ReadingBatch
from monitor.registry import Registry
from rules.contract import make_evaluator
from rules.spec import AnyRule, CompositeRule, CountRule, InterruptionRule

CHUNK = 50_000
MAX_READINGS = 5_000_000


async def run_backtest(
    db: AsyncEngine,
    registry: Registry,
    proposed: AnyRule,
    current: AnyRule | None,
    start: datetime,
    end: datetime,
    sensors: set[str] | None = None,
) -> dict[str, Any]:
    """``sensors``, when given, limits the run to those sensors (an enterprise's own)."""
    rules = {"proposed": proposed, "current": current}
    for name, rule in rules.items():
        if rule is not None and isinstance(rule, InterruptionRule | CountRule | CompositeRule):
            raise ConfigError(
                "backtest runs rules judged on each sensor's readings (threshold, rate, window,"
                f" spike, drift, leak, flatline, anomaly); {name} is a {rule.type} rule"
            )
    keys = sorted(
        registry.keys[s.id]
        for s in registry.sensors.values()
        if (sensors is None or s.id in sensors)
        and (proposed.selector.matches(s) or (current is not None and current.selector.matches(s)))
    )
    runs = {
        name: (make_evaluator(rule, registry, start.timestamp()), AlertTracker())
        for name, rule in rules.items()
        if rule is not None
    }
    alerts: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
    readings = 0
    async with db.connect() as conn:
        result = await conn.stream(
            text(
                "SELECT sensor_key, extract(epoch FROM ts) AS ts, value FROM readings "
                "WHERE sensor_key = ANY(:k) AND ts >= :s AND ts < :e ORDER BY ts LIMIT :n"
            ),
            {"k": keys, "s": start, "e": end, "n": MAX_READINGS},
        )
        async for chunk in result.partitions(CHUNK):
            rows = np.array([(r[0], float(r[1]), r[2]) for r in chunk], dtype=float)
            readings += rows.shape[0]
            batch = ReadingBatch(
                rows[:, 0].astype(np.int32),
                rows[:, 1],
                rows[:, 2],
                np.zeros(rows.shape[0], np.int16),
                rows[:, 1],
            )
            for name, (evaluator, tracker) in runs.items():
                for signal in evaluator.evaluate(batch, registry):
                    for event in tracker.observe(signal, signal.ts):
                        if event.kind == EventKind.OPENED:
                            alerts[name].append(
                                {
                                    "sensor": event.alert.sensor,
                                    "level": int(event.level),
                                    "opened_at": to_datetime(event.ts),
                                }
                            )
                        elif event.kind == EventKind.ESCALATED:
                            alerts[name].append(
                                {
                                    "sensor": event.alert.sensor,
                                    "level": int(event.level),
                                    "escalated_at": to_datetime(event.ts),
                                }
                            )
    return {
        "from": start,
        "to": end,
        "readings": readings,
        "sensors": len(keys),
        **{
            name: {
                "per_level": dict(sorted(Counter(str(a["level"]) for a in found).items())),
                "alerts": found,
            }
            for name, found in alerts.items()
        },
    }
