"""Rules: list, read with audit trail, change (validated, applied at once or proposed for a
second person's approval), proposals, backtest."""

from __future__ import annotations

import difflib
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ValidationError

from monitor.api.contract import RuleBodyText, RuleText, TimeBody, TimeText
from monitor.api.deps import (
    actor,
    as_http,
    city,
    parse_time,
    personal,
    runtime,
    tenant_of,
    visible,
)
from monitor.app import Runtime
from monitor.backtest import run_backtest
from monitor.errors import ConfigError, ConflictError
from monitor.store import rules as rule_store
from monitor.store.shadow import shadow_report
from rules.governance import diff
from rules.spec import GRADED, AnomalyRule, parse_rule

router = APIRouter(prefix="/api/v1", tags=["rules"])
Rt = Annotated[Runtime, Depends(runtime)]
ProposalId = Annotated[int, Path(ge=1, le=2**31 - 1)]
CITY = [Depends(city)]
PROPOSED: dict[int | str, dict[str, Any]] = {
    202: {"description": "proposed (a second person approves) or scheduled; not yet in force"}
}


def _invalid(err: ValidationError) -> HTTPException:
    return HTTPException(
        422,
        [{"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in err.errors()],
    )


@router.get("/rules")
async def list_rules(rt: Rt) -> list[dict[str, Any]]:
    async with rt.db.connect() as conn:
        versions = await rule_store.rule_versions(conn)
    return [
        {**rule.model_dump(mode="json"), **versions.get(rule_id, {})}
        for rule_id, rule in sorted(rt.engine.rules.items())
    ]


@router.get("/sensors/{sensor_id}/setpoints")
async def setpoints(sensor_id: str, rt: Rt, request: Request) -> list[dict[str, Any]]:
    """The set-points a sensor is judged by: each enabled graded rule that applies to it, with
    the levels in force for it (overrides resolved), as the console draws them on a trend."""
    sensor = rt.registry.sensors.get(sensor_id)
    if sensor is None or not visible(request, sensor.site):
        raise HTTPException(404, f"sensor {sensor_id!r} not found")
    out = []
    for rule_id, rule in sorted(rt.engine.rules.items()):
        if isinstance(rule, GRADED) and rule.enabled and rule.selector.matches(sensor):
            levels, deadband, _, _ = rule.params_for(sensor)
            out.append(
                {
                    "rule": rule_id,
                    "type": rule.type,
                    "category": rule.category.value,
                    "direction": rule.direction,
                    "levels": {str(k): v for k, v in sorted(levels.items())},
                    "deadband": deadband,
                }
            )
    return out


@router.get("/rules/{rule_id}")
async def get_rule(rule_id: str, rt: Rt) -> dict[str, Any]:
    rule = rt.engine.rules.get(rule_id)
    if rule is None:
        raise HTTPException(404, f"rule {rule_id!r} not found")
    async with rt.db.connect() as conn:
        changes = await rule_store.rule_changes(conn, rule_id)
        proposals = await rule_store.list_proposals(conn, rule_id)
    for change in changes:
        change["diff"] = diff(change["old"], change["new"])
    return {
        **rule.model_dump(mode="json"),
        "changes": changes,
        "pending": [p for p in proposals if p["status"] == "pending"],
    }


@router.get("/rules/{rule_id}/shadow")
async def shadow(
    rule_id: str,
    rt: Rt,
    request: Request,
    since: TimeText | None = None,
    sensor: str | None = None,
    limit: int = Query(100, ge=1, le=10_000),
) -> dict[str, Any]:
    """What an anomaly rule in shadow mode has scored and would have raised."""
    rule = rt.engine.rules.get(rule_id)
    if not isinstance(rule, AnomalyRule):
        raise HTTPException(404, f"no anomaly rule {rule_id!r}")
    await rt.pipeline.shadow_written()  # the scores of readings already acknowledged
    async with rt.db.connect() as conn:
        report = await shadow_report(
            conn,
            rule_id,
            parse_time(since, "since"),
            sensor,
            limit,
            _own_sensors(request, rt),
            opening_level=4 if rule.blue_after < rule.persist else 3,
        )
    return {"shadow": rule.shadow, **report}


def _own_sensors(request: Request, rt: Runtime) -> list[str] | None:
    if tenant_of(request) is None:
        return None
    return [s.id for s in rt.registry.sensors.values() if visible(request, s.site)]


READ_ONLY = ("changes", "pending", "version", "updated_at", "updated_by")


def _with_id(spec: dict[str, Any], rule_id: str) -> dict[str, Any]:
    """The body as a rule: what GET answers can be sent back (read-only fields dropped)."""
    spec = {k: v for k, v in spec.items() if k not in READ_ONLY}
    spec = {**spec, "id": spec.get("id", rule_id)}
    if spec["id"] != rule_id:
        raise HTTPException(422, "the body's id differs from the path's")
    return spec


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, ``null`` removes a key, anything
    else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def selector_warnings(rt: Runtime, rule: Any) -> list[str]:
    """A rule that matches no registered sensor is accepted, with a warning that says so and
    names the closest known kind (a misspelt ``kind`` is the usual cause)."""
    if any(rule.selector.matches(s) for s in rt.registry.sensors.values()):
        return []
    kinds = sorted({s.kind for s in rt.registry.sensors.values()})
    wanted = rule.selector.model_dump(exclude_none=True)
    hint = ""
    if isinstance(wanted.get("kind"), str):
        close = difflib.get_close_matches(wanted["kind"], kinds, n=1)
        hint = f"; did you mean kind {close[0]!r}?" if close else ""
    return [f"the selector {wanted} matches no registered sensor{hint}"]


async def _change(
    rule_id: str,
    rt: Runtime,
    who: str,
    spec: dict[str, Any],
    response: Response,
    effective_from: str | None,
) -> dict[str, Any]:
    when = parse_time(effective_from, "effective_from")
    try:
        change = await rt.service.put_rule(
            _with_id(spec, rule_id), who, when.timestamp() if when else None
        )
    except ValidationError as err:
        raise _invalid(err) from err
    except ConfigError as err:
        raise HTTPException(422, str(err)) from err
    except ConflictError as err:
        raise HTTPException(409, str(err)) from err
    body = change.rule.model_dump(mode="json")
    warnings = selector_warnings(rt, change.rule)
    if not change.applied:
        response.status_code = 202
        pending = change.status == "pending"
        how = (
            f"another person POSTs /api/v1/rules/{rule_id}/proposals/{change.proposal}/approve "
            "(or /reject) with their own token; the rule in force stays until then"
            if pending
            else f"in force from {when.isoformat() if when else 'its effective time'}"
        )
        return {
            "status": "pending_approval" if pending else change.status,
            "how_to_approve": how,
            "proposal": change.proposal,
            "proposed_by": who,
            "effective_from": when,
            "rule": body,
            "warnings": warnings,
        }
    return {**body, "warnings": warnings} if warnings else body


@router.put("/rules/{rule_id}", dependencies=CITY, responses=PROPOSED)
async def put_rule(
    rule_id: str,
    rt: Rt,
    who: Annotated[str, Depends(actor)],
    spec: Annotated[RuleBodyText, Body()],
    response: Response,
    effective_from: TimeText | None = None,
) -> dict[str, Any]:
    """Create or replace a rule (the rule language, see README): fields left out take their
    defaults (use PATCH to change some fields only).  A change to a red or orange set-point
    answers 202 with a proposal that another person approves; the old rule stays in force
    until then.  Any other change answers 200 and is in force for the next reading.
    ``effective_from`` (ISO-8601 or epoch s) in the future schedules the change (202,
    ``scheduled``): for example next year's thresholds before the flood season.  A selector
    that matches no sensor is accepted with ``warnings``."""
    return await _change(rule_id, rt, who, spec, response, effective_from)


@router.patch("/rules/{rule_id}", dependencies=CITY, responses=PROPOSED)
async def patch_rule(
    rule_id: str,
    rt: Rt,
    who: Annotated[str, Depends(actor)],
    patch: Annotated[dict[str, Any], Body(media_type="application/merge-patch+json")],
    response: Response,
    effective_from: TimeText | None = None,
) -> dict[str, Any]:
    """Change some fields of a rule (RFC 7386 JSON merge patch: ``null`` removes a field,
    which then takes its default); the rest stays as it is.  Same approval path as PUT."""
    current = rt.engine.rules.get(rule_id)
    if current is None:
        raise HTTPException(404, f"rule {rule_id!r} not found")
    spec = merge_patch(current.model_dump(mode="json", exclude_defaults=True), patch)
    spec["type"] = current.type
    return await _change(rule_id, rt, who, spec, response, effective_from)


async def _decide(rule_id: str, proposal: int, rt: Runtime, who: str, approve: bool) -> Any:
    with as_http():
        rule = await rt.service.decide(rule_id, proposal, who, approve)
    return {"status": "approved" if approve else "rejected", "rule": rule.model_dump(mode="json")}


@router.post(
    "/rules/{rule_id}/proposals/{proposal}/approve", dependencies=[*CITY, Depends(personal)]
)
async def approve(
    rule_id: str, proposal: ProposalId, rt: Rt, who: Annotated[str, Depends(actor)]
) -> dict[str, Any]:
    """A second person approves a red or orange change, with a personal token."""
    result: dict[str, Any] = await _decide(rule_id, proposal, rt, who, True)
    return result


@router.post("/rules/{rule_id}/proposals/{proposal}/reject", dependencies=CITY)
async def reject(
    rule_id: str, proposal: ProposalId, rt: Rt, who: Annotated[str, Depends(actor)]
) -> dict[str, Any]:
    result: dict[str, Any] = await _decide(rule_id, proposal, rt, who, False)
    return result


class BacktestIn(BaseModel):
    rule: RuleText
    from_: TimeBody
    to: TimeBody

    model_config = {"populate_by_name": True, "alias_generator": lambda n: n.rstrip("_")}


@router.post("/rules/backtest")
async def backtest(body: BacktestIn, rt: Rt, request: Request) -> dict[str, Any]:
    """Alerts a proposed rule would have raised on stored readings in [from, to), per level
    and with their times, next to the rule in force with the same id.  Writes nothing.  An
    enterprise's token backtests over its own sensors only."""
    try:
        proposed = parse_rule(body.rule)
    except ValidationError as err:
        raise _invalid(err) from err
    start, end = parse_time(body.from_, "from"), parse_time(body.to, "to")
    if start is None or end is None:
        raise HTTPException(422, "from and to are required")
    if start >= end:
        raise HTTPException(422, "from must be before to")
    sensors = {s.id for s in rt.registry.sensors.values() if visible(request, s.site)}
    try:
        return await run_backtest(
            rt.db, rt.registry, proposed, rt.engine.rules.get(proposed.id), start, end, sensors
        )
    except ConfigError as err:
        raise HTTPException(422, str(err)) from err
