"""Operator-facing changes to the catalogue and the rules (used by the API and the CLI);
alert actions and noise control are in ``monitor.operations``.

Each operation writes the store and updates the in-memory state under the pipeline lock, so a
change takes effect at once and in order with the readings being processed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.clock import Clock, to_datetime, to_epoch
from monitor.errors import ConflictError, NotFoundError
from monitor.model import Sensor, Site
from monitor.pipeline import Pipeline
from monitor.registry import Registry
from monitor.store import catalog
from monitor.store import rules as rule_store
from rules.engine import RuleEngine
from rules.governance import needs_approval
from rules.spec import AnyRule, parse_rule


@dataclass(frozen=True)
class RuleChange:
    rule: AnyRule
    applied: bool
    proposal: int | None = None
    status: str = "applied"


class Service:
    def __init__(
        self,
        db: AsyncEngine,
        registry: Registry,
        engine: RuleEngine,
        pipeline: Pipeline,
        clock: Clock,
    ) -> None:
        self.db = db
        self.registry = registry
        self.engine = engine
        self.pipeline = pipeline
        self.clock = clock

    async def add_site(self, site: Site) -> None:
        async with self.pipeline.locked():
            async with self.db.begin() as conn:
                await catalog.upsert_site(conn, site)
            self.registry.add_site(site)

    async def add_sensor(self, sensor: Sensor) -> None:
        if sensor.site not in self.registry.sites:
            raise NotFoundError("site", sensor.site)
        async with self.pipeline.locked():
            async with self.db.begin() as conn:
                key = await catalog.upsert_sensor(conn, sensor)
            self.registry.add_sensor(sensor, key)

    async def put_rule(
        self, spec: dict[str, Any], actor: str, effective_from: float | None = None
    ) -> RuleChange:
        """Validate, then either apply at once (stored, audited, in force for the next
        reading) or, for a change to a red or orange set-point, store it as a proposal that a
        different person must approve."""
        rule = parse_rule(spec)
        current = self.engine.rules.get(rule.id)
        if current is not None and current.type != rule.type:
            raise ConflictError(f"rule {rule.id!r} is a {current.type} rule; its type is fixed")
        future = effective_from is not None and effective_from > self.clock.now()
        eff = to_datetime(effective_from) if effective_from is not None else None
        if needs_approval(current, rule) or future:
            status = "pending" if needs_approval(current, rule) else "scheduled"
            async with self.db.begin() as conn:
                proposal = await rule_store.add_proposal(
                    conn,
                    rule.model_dump(mode="json"),
                    actor,
                    status=status,
                    effective_from=eff if future else None,
                )
            return RuleChange(rule, applied=False, proposal=proposal, status=status)
        await self._apply(rule, actor)
        return RuleChange(rule, applied=True)

    async def apply_due(self) -> list[AnyRule]:
        """Put scheduled (effective-dated) changes in force once their time has come."""
        applied = []
        async with self.db.begin() as conn:
            due = await rule_store.due_scheduled(conn, to_datetime(self.clock.now()))
            for row in due:
                await rule_store.decide_proposal(conn, row["id"], "applied", "schedule")
        for row in due:
            rule = parse_rule(row["spec"])
            await self._apply(rule, f"{row['proposed_by']} (effective {row['effective_from']})")
            applied.append(rule)
        return applied

    async def _apply(self, rule: AnyRule, actor: str) -> None:
        async with self.pipeline.locked():
            async with self.db.begin() as conn:
                await rule_store.save_rule(conn, rule.model_dump(mode="json"), actor)
            self.engine.upsert(rule, self.clock.now())

    async def decide(self, rule_id: str, proposal_id: int, actor: str, approve: bool) -> AnyRule:
        """Approve (apply) or reject a pending proposal; the proposer cannot approve."""
        async with self.db.begin() as conn:
            proposal = await rule_store.get_proposal(conn, proposal_id)
            if proposal is None or proposal["rule_id"] != rule_id:
                raise NotFoundError("proposal", str(proposal_id))
            if proposal["status"] != "pending":
                raise ConflictError(f"proposal {proposal_id} is {proposal['status']}")
            if approve and proposal["proposed_by"] == actor:
                raise PermissionError("a red or orange change needs a second person to approve")
            eff = proposal.get("effective_from")
            scheduled = approve and eff is not None and to_epoch(eff) > self.clock.now()
            status = "scheduled" if scheduled else ("approved" if approve else "rejected")
            await rule_store.decide_proposal(conn, proposal_id, status, actor)
        rule = parse_rule(proposal["spec"])
        if approve and not scheduled:
            await self._apply(rule, f"{proposal['proposed_by']} (approved by {actor})")
        return rule
