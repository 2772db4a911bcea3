"""Changing the risk model of a site kind (or the default): validated, versioned and audited
like rules; a change that can make or unmake a red risk (``alerts.risk.severe_part``) waits
for a second person's approval.  A change in force is used at once: every site is assessed
again at the next tick."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from alerts.risk import RiskModel, severe_part
from monitor.errors import ConflictError, NotFoundError
from monitor.model import SiteKind
from monitor.risk_monitor import RiskMonitor, models_from
from monitor.store import risk_models as store

NAMES = ("default", *(k.value for k in SiteKind))


@dataclass(frozen=True)
class ModelChange:
    name: str
    model: RiskModel
    status: str  # applied, pending_approval, rejected
    version: int | None = None
    proposal: int | None = None


class RiskModelService:
    def __init__(self, db: AsyncEngine, monitor: RiskMonitor) -> None:
        self.db, self.monitor = db, monitor

    async def load(self) -> None:
        async with self.db.connect() as conn:
            self.monitor.models = models_from(await store.load(conn))

    async def put(self, name: str, model: RiskModel, actor: str) -> ModelChange:
        if name not in NAMES:
            raise NotFoundError("risk model", name)
        if severe_part(self.monitor.models.get(name)) != severe_part(model):
            async with self.db.begin() as conn:
                proposal = await store.propose(conn, name, model.model_dump(mode="json"), actor)
            return ModelChange(name, model, "pending_approval", proposal=proposal)
        return await self._apply(name, model, actor)

    async def decide(self, name: str, proposal_id: int, actor: str, approve: bool) -> ModelChange:
        """Approve (apply) or reject a pending change; the proposer cannot approve it."""
        async with self.db.begin() as conn:
            found = await store.proposal(conn, proposal_id)
            if found is None or found["name"] != name:
                raise NotFoundError("proposal", str(proposal_id))
            if found["status"] != "pending":
                raise ConflictError(f"proposal {proposal_id} is {found['status']}")
            if approve and found["proposed_by"] == actor:
                raise PermissionError(
                    "a change that can make or unmake a red risk needs a second person"
                )
            await store.decide(conn, proposal_id, "approved" if approve else "rejected", actor)
        model = RiskModel.model_validate(found["spec"])
        if not approve:
            return ModelChange(name, model, "rejected", proposal=proposal_id)
        return await self._apply(name, model, f"{found['proposed_by']} (approved by {actor})")

    async def _apply(self, name: str, model: RiskModel, actor: str) -> ModelChange:
        async with self.db.begin() as conn:
            version = await store.save(conn, name, model.model_dump(mode="json"), actor)
        self.monitor.models = self.monitor.models.with_model(name, model, version)
        self.monitor.reassess()
        return ModelChange(name, model, "applied", version=version)
