"""Rules: list, read, change (validated, applied at once, audited)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException
from pydantic import ValidationError

from monitor.api.deps import actor, runtime
from monitor.app import Runtime
from monitor.errors import ConfigError
from monitor.store import rules as rule_store

router = APIRouter(prefix="/api/v1", tags=["rules"])
Rt = Annotated[Runtime, Depends(runtime)]


@router.get("/rules")
async def list_rules(rt: Rt) -> list[dict[str, Any]]:
    async with rt.db.connect() as conn:
        versions = await rule_store.rule_versions(conn)
    return [
        {**rule.model_dump(mode="json"), **versions.get(rule_id, {})}
        for rule_id, rule in sorted(rt.engine.rules.items())
    ]


@router.get("/rules/{rule_id}")
async def get_rule(rule_id: str, rt: Rt) -> dict[str, Any]:
    rule = rt.engine.rules.get(rule_id)
    if rule is None:
        raise HTTPException(404, f"rule {rule_id!r} not found")
    async with rt.db.connect() as conn:
        changes = await rule_store.rule_changes(conn, rule_id)
    return {**rule.model_dump(mode="json"), "changes": changes}


@router.put("/rules/{rule_id}")
async def put_rule(
    rule_id: str,
    rt: Rt,
    who: Annotated[str, Depends(actor)],
    spec: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    """Create or replace a rule.  The body is the rule in the rule language (see README);
    its ``id`` defaults to the path's and must match it."""
    spec = {**spec, "id": spec.get("id", rule_id)}
    if spec["id"] != rule_id:
        raise HTTPException(422, "the body's id differs from the path's")
    current = rt.engine.rules.get(rule_id)
    if current is not None and "type" not in spec:
        spec["type"] = current.type
    try:
        rule = await rt.service.put_rule(spec, who)
    except ValidationError as err:
        raise HTTPException(
            422,
            [
                {"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]}
                for e in err.errors()
            ],
        ) from err
    except ConfigError as err:
        raise HTTPException(422, str(err)) from err
    return rule.model_dump(mode="json")
