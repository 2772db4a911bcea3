"""Silences and shelves in the store, so that a restart keeps them."""

from __future__ import annotations

import json
from dataclasses import asdict

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.noise import NoiseControl, Shelf, Silence


async def save_silence(conn: AsyncConnection, silence: Silence) -> None:
    await conn.execute(
        text(
            "INSERT INTO silences (id, spec) VALUES (:id, CAST(:s AS jsonb)) "
            "ON CONFLICT (id) DO UPDATE SET spec = EXCLUDED.spec"
        ),
        {"id": silence.id, "s": json.dumps(asdict(silence))},
    )


async def delete_silence(conn: AsyncConnection, silence_id: str) -> None:
    await conn.execute(
        text("UPDATE silences SET deleted = true WHERE id = :id"), {"id": silence_id}
    )


async def save_shelf(conn: AsyncConnection, shelf: Shelf) -> None:
    await conn.execute(
        text(
            "INSERT INTO shelves (alert_id, spec) VALUES (:id, CAST(:s AS jsonb)) "
            "ON CONFLICT (alert_id) DO UPDATE SET spec = EXCLUDED.spec"
        ),
        {"id": shelf.alert_id, "s": json.dumps(asdict(shelf))},
    )


async def load(conn: AsyncConnection, noise: NoiseControl, now: float) -> None:
    """Silences and shelves still in force."""
    for row in await conn.execute(text("SELECT spec FROM silences WHERE NOT deleted")):
        silence = Silence(**row[0])
        if silence.ends > now:
            noise.silences[silence.id] = silence
    for row in await conn.execute(text("SELECT spec FROM shelves")):
        shelf = Shelf(**row[0])
        if shelf.until > now:
            noise.shelves[shelf.alert_id] = shelf
