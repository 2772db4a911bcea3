"""Risk models in the store ("default" and one per site kind): versions, an audit trail of
every change (who, when, old, new), and the proposals a second person decides."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def load(conn: AsyncConnection) -> dict[str, tuple[dict[str, Any], int]]:
    rows = await conn.execute(text("SELECT name, spec, version FROM risk_models ORDER BY name"))
    return {r.name: (r.spec, r.version) for r in rows}


async def save(conn: AsyncConnection, name: str, spec: dict[str, Any], actor: str) -> int:
    """Store a model and audit the change; returns its new version."""
    old = (
        await conn.execute(
            text("SELECT spec FROM risk_models WHERE name = :n FOR UPDATE"), {"n": name}
        )
    ).scalar()
    version = (
        await conn.execute(
            text(
                """INSERT INTO risk_models (name, spec, updated_by) VALUES
                   (:n, CAST(:spec AS jsonb), :actor)
                   ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec,
                     version = risk_models.version + 1, updated_at = now(),
                     updated_by = EXCLUDED.updated_by
                   RETURNING version"""
            ),
            {"n": name, "spec": json.dumps(spec), "actor": actor},
        )
    ).scalar_one()
    await conn.execute(
        text(
            """INSERT INTO risk_model_changes (name, changed_by, old, new)
               VALUES (:n, :actor, CAST(:old AS jsonb), CAST(:new AS jsonb))"""
        ),
        {"n": name, "actor": actor, "old": None if old is None else json.dumps(old),
         "new": json.dumps(spec)},
    )  # fmt: skip
    return int(version)


async def changes(conn: AsyncConnection, name: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT changed_at, changed_by, old, new FROM risk_model_changes WHERE name = :n"
            " ORDER BY id"
        ),
        {"n": name},
    )
    return [dict(r._mapping) for r in rows]


async def propose(conn: AsyncConnection, name: str, spec: dict[str, Any], actor: str) -> int:
    row = await conn.execute(
        text(
            """INSERT INTO risk_model_proposals (name, spec, proposed_by)
               VALUES (:n, CAST(:spec AS jsonb), :actor) RETURNING id"""
        ),
        {"n": name, "spec": json.dumps(spec), "actor": actor},
    )
    return int(row.scalar_one())


async def proposal(conn: AsyncConnection, proposal_id: int) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            text("SELECT * FROM risk_model_proposals WHERE id = :id FOR UPDATE"),
            {"id": proposal_id},
        )
    ).first()
    return None if row is None else dict(row._mapping)


async def decide(conn: AsyncConnection, proposal_id: int, status: str, actor: str) -> None:
    await conn.execute(
        text(
            "UPDATE risk_model_proposals SET status = :s, decided_by = :a, decided_at = now()"
            " WHERE id = :id"
        ),
        {"s": status, "a": actor, "id": proposal_id},
    )


async def pending(conn: AsyncConnection, name: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT id, spec, proposed_by, proposed_at FROM risk_model_proposals"
            " WHERE name = :n AND status = 'pending' ORDER BY id"
        ),
        {"n": name},
    )
    return [dict(r._mapping) for r in rows]
