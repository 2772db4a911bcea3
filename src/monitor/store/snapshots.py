"""Rule-state snapshots (``state_snapshots``): a Kafka partition's, or the single node's."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_SAVE = text("""INSERT INTO state_snapshots
                  (topic, partition, next_offset, sensors, state, alerts, taken_at)
                VALUES (:t, :p, :o, :n, :s, CAST(:a AS jsonb), coalesce(to_timestamp(:at), now()))
                ON CONFLICT (topic, partition) DO UPDATE SET
                  next_offset = EXCLUDED.next_offset, sensors = EXCLUDED.sensors,
                  state = EXCLUDED.state, alerts = EXCLUDED.alerts, taken_at = EXCLUDED.taken_at""")


async def save_snapshot(
    conn: AsyncConnection,
    topic: str,
    partition: int,
    next_offset: int,
    sensors: int,
    state: bytes,
    alerts: list[dict[str, Any]],
    taken_at: float | None = None,
) -> None:
    """Keep one snapshot per topic and partition: the newest replaces the one before.
    ``taken_at``: when the state was taken (epoch s), if it is written later; else now."""
    params = {"t": topic, "p": partition, "o": next_offset, "n": sensors, "s": state}
    await conn.execute(_SAVE, {**params, "a": json.dumps(alerts), "at": taken_at})
