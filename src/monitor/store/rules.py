"""Rules in the store, with an audit trail of every change (who, when, old, new)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def load_rules(conn: AsyncConnection) -> list[dict[str, Any]]:
    result = await conn.execute(text("SELECT spec FROM rules ORDER BY id"))
    return [row[0] for row in result]


async def save_rule(
    conn: AsyncConnection, spec: dict[str, Any], actor: str, *, only_if_new: bool = False
) -> dict[str, Any] | None:
    """Store a rule and audit the change.  Returns the previous spec (None if new).

    With ``only_if_new`` an existing rule is left alone (shipped defaults never overwrite
    what operators tuned)."""
    old_row = (
        await conn.execute(
            text("SELECT spec FROM rules WHERE id = :id FOR UPDATE"), {"id": spec["id"]}
        )
    ).first()
    old: dict[str, Any] | None = old_row[0] if old_row else None
    if old is not None and (only_if_new or old == spec):
        return old
    await conn.execute(
        text(
            """INSERT INTO rules (id, type, spec, updated_by) VALUES
               (:id, :type, CAST(:spec AS jsonb), :actor)
               ON CONFLICT (id) DO UPDATE SET spec = EXCLUDED.spec, type = EXCLUDED.type,
                 version = rules.version + 1, updated_at = now(),
                 updated_by = EXCLUDED.updated_by"""
        ),
        {"id": spec["id"], "type": spec["type"], "spec": json.dumps(spec), "actor": actor},
    )
    await conn.execute(
        text(
            """INSERT INTO rule_changes (rule_id, changed_by, old, new)
               VALUES (:id, :actor, CAST(:old AS jsonb), CAST(:new AS jsonb))"""
        ),
        {
            "id": spec["id"],
            "actor": actor,
            "old": json.dumps(old) if old is not None else None,
            "new": json.dumps(spec),
        },
    )
    return old


async def rule_versions(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    result = await conn.execute(text("SELECT id, version, updated_at, updated_by FROM rules"))
    return {r[0]: {"version": r[1], "updated_at": r[2], "updated_by": r[3]} for r in result}


async def rule_changes(conn: AsyncConnection, rule_id: str) -> list[dict[str, Any]]:
    result = await conn.execute(
        text(
            "SELECT changed_at, changed_by, old, new FROM rule_changes "
            "WHERE rule_id = :id ORDER BY id"
        ),
        {"id": rule_id},
    )
    return [dict(r._mapping) for r in result]


async def add_proposal(
    conn: AsyncConnection,
    spec: dict[str, Any],
    actor: str,
    *,
    status: str = "pending",
    effective_from: datetime | None = None,
) -> int:
    """Store a change that is not in force yet (``pending`` approval or ``scheduled``); an
    older pending proposal of the same rule is superseded."""
    await conn.execute(
        text(
            "UPDATE rule_proposals SET status = 'superseded' "
            "WHERE rule_id = :id AND status = 'pending'"
        ),
        {"id": spec["id"]},
    )
    row = (
        await conn.execute(
            text(
                "INSERT INTO rule_proposals (rule_id, spec, proposed_by, status, effective_from)"
                " VALUES (:id, CAST(:spec AS jsonb), :actor, :status, :eff) RETURNING id"
            ),
            {
                "id": spec["id"],
                "spec": json.dumps(spec),
                "actor": actor,
                "status": status,
                "eff": effective_from,
            },
        )
    ).one()
    return int(row[0])


async def get_proposal(conn: AsyncConnection, proposal_id: int) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            text("SELECT * FROM rule_proposals WHERE id = :id FOR UPDATE"), {"id": proposal_id}
        )
    ).first()
    return None if row is None else dict(row._mapping)


async def decide_proposal(conn: AsyncConnection, proposal_id: int, status: str, actor: str) -> None:
    await conn.execute(
        text(
            "UPDATE rule_proposals SET status = :s, decided_by = :a, decided_at = now() "
            "WHERE id = :id"
        ),
        {"s": status, "a": actor, "id": proposal_id},
    )


async def list_proposals(conn: AsyncConnection, rule_id: str) -> list[dict[str, Any]]:
    result = await conn.execute(
        text("SELECT * FROM rule_proposals WHERE rule_id = :id ORDER BY id"), {"id": rule_id}
    )
    return [dict(r._mapping) for r in result]


async def due_scheduled(conn: AsyncConnection, now: datetime) -> list[dict[str, Any]]:
    result = await conn.execute(
        text(
            "SELECT * FROM rule_proposals WHERE status = 'scheduled' AND effective_from <= :n "
            "ORDER BY effective_from, id FOR UPDATE SKIP LOCKED"
        ),
        {"n": now},
    )
    return [dict(r._mapping) for r in result]
