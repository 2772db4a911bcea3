"""Risk models through the API: each site kind's (and the default) weights and matrix, read
with their audit trail, changed (at once, or proposed for a second person's approval when a
change can make or unmake a red risk), and the proposals decided."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response

from alerts.risk import RiskModel
from monitor.api.deps import actor, as_http, city, personal, runtime
from monitor.api.risk import models_of
from monitor.api.rules import PROPOSED, ProposalId
from monitor.app import Runtime
from monitor.errors import NotFoundError
from monitor.risk_models import NAMES, ModelChange, RiskModelService
from monitor.store import risk_models as risk_store
from rules.governance import diff

router = APIRouter(prefix="/api/v1/risk", tags=["risk"])
Rt = Annotated[Runtime, Depends(runtime)]
CITY = [Depends(city)]


def _service(rt: Runtime) -> RiskModelService:
    if rt.risk_models is None:
        raise HTTPException(409, "this node assesses no risk")
    return rt.risk_models


@router.get("/models")
async def list_models(rt: Rt) -> list[dict[str, Any]]:
    """The risk model of every site kind and the default, with its version (0: as shipped)."""
    models = models_of(rt)
    return [
        {"name": n, "version": models.versions.get(n, 0), **models.get(n).model_dump(mode="json")}
        for n in NAMES
    ]


@router.get("/models/{name}")
async def get_model(name: str, rt: Rt) -> dict[str, Any]:
    """One model, its audit trail (who, when, old, new, diff) and pending proposals."""
    if name not in NAMES:
        raise HTTPException(404, f"risk model {name!r} not found; known: {', '.join(NAMES)}")
    models = models_of(rt)
    async with rt.db.connect() as conn:
        changes = await risk_store.changes(conn, name)
        pending = await risk_store.pending(conn, name)
    for change in changes:
        change["diff"] = diff(change["old"], change["new"])
    return {
        "name": name,
        "version": models.versions.get(name, 0),
        **models.get(name).model_dump(mode="json"),
        "changes": changes,
        "pending": pending,
    }


@router.put("/models/{name}", dependencies=CITY, responses=PROPOSED)
async def put_model(
    name: str,
    model: RiskModel,
    rt: Rt,
    who: Annotated[str, Depends(actor)],
    response: Response,
) -> dict[str, Any]:
    """Replace a model (fields left out take their defaults).  A change to what can make or
    unmake a red risk (the matrix's red cells, any adjustment) answers 202 with a proposal
    that another person approves; any other change is in force at once (200)."""
    try:
        change = await _service(rt).put(name, model, who)
    except NotFoundError as err:
        raise HTTPException(404, f"{err}; known: {', '.join(NAMES)}") from err
    return _answer(change, response)


@router.post("/models/{name}/proposals/{proposal}/approve", dependencies=[*CITY, Depends(personal)])
async def approve_model(
    name: str, proposal: ProposalId, rt: Rt, who: Annotated[str, Depends(actor)],
    response: Response,
) -> dict[str, Any]:  # fmt: skip
    """A second person approves a change, with a personal token."""
    return _answer(await _decide(rt, name, proposal, who, True), response)


@router.post("/models/{name}/proposals/{proposal}/reject", dependencies=[*CITY, Depends(personal)])
async def reject_model(
    name: str, proposal: ProposalId, rt: Rt, who: Annotated[str, Depends(actor)],
    response: Response,
) -> dict[str, Any]:  # fmt: skip
    return _answer(await _decide(rt, name, proposal, who, False), response)


async def _decide(rt: Runtime, name: str, proposal: int, who: str, approve: bool) -> ModelChange:
    with as_http():
        return await _service(rt).decide(name, proposal, who, approve)


def _answer(change: ModelChange, response: Response) -> dict[str, Any]:
    body = {"name": change.name, **change.model.model_dump(mode="json"), "status": change.status}
    if change.status == "applied":
        return {**body, "version": change.version}
    if change.status == "rejected":
        return {**body, "proposal": change.proposal}
    response.status_code = 202
    how = (
        f"another person POSTs /api/v1/risk/models/{change.name}/proposals/{change.proposal}"
        "/approve (or /reject) with their own token; the model in force stays until then"
    )
    return {**body, "proposal": change.proposal, "how_to_approve": how}
