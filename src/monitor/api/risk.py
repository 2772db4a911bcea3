"""Dynamic risk assessment: the risk of every site now (``alerts.risk``, assessed from the
store's active alerts, the registry's sensors and the last 30 days of warnings), its stored
changes, and the roll-ups per enterprise (tenant), district and city.  Enterprise tokens see
their own sites only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from alerts.risk import RiskModels, SiteRisk, roll_up
from monitor import risk_monitor
from monitor.api.contract import TimeText
from monitor.api.deps import parse_time, runtime, tenant_of
from monitor.app import Runtime

router = APIRouter(prefix="/api/v1/risk", tags=["risk"])
Rt = Annotated[Runtime, Depends(runtime)]
Level = Annotated[int | None, Query(ge=1, le=4, description="1 red .. 4 blue")]
UNASSIGNED = "(none)"  # the district of a site without one


async def assess_sites(rt: Runtime, request: Request) -> list[tuple[SiteRisk, str]]:
    """Every visible site's risk now, with its district, worst first."""
    tenant = tenant_of(request)
    sites = [s for s in rt.registry.sites.values() if tenant is None or s.tenant == tenant]
    async with rt.db.connect() as conn:
        risks = await risk_monitor.assess_sites(
            conn, rt.registry, sites, rt.clock.now(), models_of(rt)
        )
    pairs = [(r, rt.registry.sites[r.site].district or UNASSIGNED) for r in risks]
    return sorted(pairs, key=lambda p: (p[0].level, -p[0].score, p[0].site))


@router.get("/sites")
async def list_sites(
    request: Request,
    rt: Rt,
    level: Level = None,
    district: str | None = None,
    tenant: str | None = None,
    top: Annotated[int | None, Query(ge=1, le=10000, description="the N riskiest")] = None,
) -> list[dict[str, Any]]:
    """Sites by risk, worst first (the ranking: ``top``)."""
    out = [
        {**risk.as_dict(), "district": None if d == UNASSIGNED else d}
        for risk, d in await assess_sites(rt, request)
        if (level is None or risk.level == level)
        and (district is None or d == district)
        and (tenant is None or risk.tenant == tenant)
    ]
    return out if top is None else out[:top]


@router.get("/sites/{site_id}")
async def get_site(
    site_id: str,
    request: Request,
    rt: Rt,
    start: Annotated[TimeText | None, Query(alias="from")] = None,
    end: Annotated[TimeText | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """The site's risk now, and its stored changes (``from``/``to``: ISO 8601 or epoch s)."""
    site = rt.registry.sites.get(site_id)
    tenant = tenant_of(request)
    if site is None or (tenant is not None and site.tenant != tenant):
        raise HTTPException(404, f"site {site_id!r} is not registered")
    async with rt.db.connect() as conn:
        (risk,) = await risk_monitor.assess_sites(
            conn, rt.registry, [site], rt.clock.now(), models_of(rt)
        )
        history = await risk_monitor.risk_history(
            conn, site_id, parse_time(start, "from"), parse_time(end, "to")
        )
    return {**risk.as_dict(), "district": site.district, "history": history}


@router.get("/enterprises")
async def enterprises(request: Request, rt: Rt) -> list[dict[str, Any]]:
    """Per enterprise (tenant): the worst site level and the number of sites per level."""
    return [u.as_dict() for u in roll_up((r.tenant, r) for r, _ in await assess_sites(rt, request))]


@router.get("/districts")
async def districts(request: Request, rt: Rt) -> list[dict[str, Any]]:
    """Per district or park, and the whole city (key ``city``)."""
    risks = await assess_sites(rt, request)
    ups = roll_up((d, r) for r, d in risks) + roll_up(("city", r) for r, _ in risks)
    return [u.as_dict() for u in ups]


def models_of(rt: Runtime) -> RiskModels:
    return rt.risk.models if rt.risk is not None else RiskModels()
