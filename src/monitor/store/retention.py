"""Retention of raw readings (DOMAIN.md 2.1: at least 30 days).

TimescaleDB: a retention policy on the hypertable (the server drops whole chunks).  Plain
PostgreSQL: the service drops whole daily partitions that ended before the cutoff.  Rollups
are kept.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.store.readings import PARTITION_DAY, PARTITION_PREFIX

log = logging.getLogger(__name__)
MIN_DAYS = 30
_PARTITION = re.compile(rf"^{PARTITION_PREFIX}(\d{{8}})$")


async def set_policy(conn: AsyncConnection, days: int) -> None:
    """(Re)set the TimescaleDB retention policy to ``days``."""
    await conn.execute(text("SELECT remove_retention_policy('readings', if_exists => true)"))
    await conn.execute(
        text("SELECT add_retention_policy('readings', drop_after => make_interval(days => :d))"),
        {"d": max(days, MIN_DAYS)},
    )


async def drop_expired(conn: AsyncConnection, days: int, now: float) -> list[str]:
    """Drop daily partitions whose whole day is older than ``days``; returns their names."""
    cutoff = datetime.fromtimestamp(now, UTC) - timedelta(days=max(days, MIN_DAYS))
    rows = await conn.execute(
        text(
            """SELECT c.relname FROM pg_inherits i
               JOIN pg_class c ON c.oid = i.inhrelid
               JOIN pg_class p ON p.oid = i.inhparent
               WHERE p.relname = 'readings'"""
        )
    )
    dropped = []
    for (name,) in rows:
        match = _PARTITION.match(name)
        if not match:
            continue
        day_end = datetime.strptime(match[1], PARTITION_DAY).replace(tzinfo=UTC) + timedelta(days=1)
        if day_end <= cutoff:
            await conn.execute(text(f"DROP TABLE {name}"))
            dropped.append(name)
    if dropped:
        log.info("retention: dropped %d daily partitions before %s", len(dropped), cutoff)
    return dropped
