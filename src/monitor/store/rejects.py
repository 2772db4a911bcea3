"""Rejected input: the raw text, the reason and where it came from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.clock import to_datetime
from monitor.model import Reject


async def write_rejects(conn: AsyncConnection, rejects: list[Reject]) -> None:
    if not rejects:
        return
    await conn.execute(
        text(
            """INSERT INTO rejects (received_at, source, topic, reason, detail, raw)
               VALUES (:at, :source, :topic, :reason, :detail, :raw)"""
        ),
        [
            {
                "at": to_datetime(r.received),
                "source": r.source,
                "topic": r.topic,
                "reason": r.reason,
                "detail": r.detail,
                "raw": r.raw.replace("\x00", "\\u0000"),
            }
            for r in rejects
        ],
    )


async def list_rejects(
    conn: AsyncConnection, since: datetime | None, limit: int
) -> list[dict[str, Any]]:
    result = await conn.execute(
        text(
            "SELECT id, received_at, source, topic, reason, detail, raw FROM rejects "
            "WHERE (CAST(:since AS timestamptz) IS NULL OR received_at >= :since) "
            "ORDER BY id DESC LIMIT :n"
        ),
        {"since": since, "n": limit},
    )
    return [dict(r._mapping) for r in result]
