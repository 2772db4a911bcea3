"""Dynamic risk assessment (issue 18): the live risk of every site (``alerts.risk``), from the
active alerts in the store, the registry's sensors and the last 30 days of warnings; and its
roll-ups per enterprise (tenant) and district.  Enterprise tokens see their own sites only."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from alerts.risk import History, SiteRisk, assess, roll_up
from monitor.api.deps import runtime, tenant_of
from monitor.app import Runtime
from monitor.clock import to_datetime
from monitor.store import alerts as alert_store

router = APIRouter(prefix="/api/v1/risk", tags=["risk"])
Rt = Annotated[Runtime, Depends(runtime)]
Level = Annotated[int | None, Query(ge=1, le=4, description="1 red .. 4 blue")]
UNASSIGNED = "(none)"  # the district of a site without one


async def assess_sites(rt: Runtime, request: Request) -> list[tuple[SiteRisk, str]]:
    """Every visible site's risk now, with its district, worst first."""
    tenant = tenant_of(request)
    sites = [s for s in rt.registry.sites.values() if tenant is None or s.tenant == tenant]
    now = rt.clock.now()
    async with rt.db.connect() as conn:
        active = await alert_store.load_active(conn, [s.id for s in sites])
        history = await alert_store.site_history(conn, to_datetime(now))
    by_site: dict[str, list[Any]] = {}
    for alert in active:
        by_site.setdefault(alert.site, []).append(alert)
    sensors = Counter(s.site for s in rt.registry.sensors.values())
    risks = [
        (
            assess(s, by_site.get(s.id, []), sensors[s.id], History(**history.get(s.id, {})), now),
            s.district or UNASSIGNED,
        )
        for s in sites
    ]
    return sorted(risks, key=lambda r: (r[0].level, -r[0].score, r[0].site))


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
async def get_site(site_id: str, request: Request, rt: Rt) -> dict[str, Any]:
    site = rt.registry.sites.get(site_id)
    tenant = tenant_of(request)
    if site is None or (tenant is not None and site.tenant != tenant):
        raise HTTPException(404, f"site {site_id!r} is not registered")
    for risk, d in await assess_sites(rt, request):
        if risk.site == site_id:
            return {**risk.as_dict(), "district": None if d == UNASSIGNED else d}
    raise HTTPException(404, f"site {site_id!r} is not registered")


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
