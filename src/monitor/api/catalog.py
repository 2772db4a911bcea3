"""Sites and sensors."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request

from monitor.api.deps import runtime, tenant_of, visible
from monitor.app import Runtime
from monitor.errors import NotFoundError
from monitor.schemas import SensorIn, SiteIn

router = APIRouter(prefix="/api/v1", tags=["registry"])
Rt = Annotated[Runtime, Depends(runtime)]


@router.get("/sites")
async def list_sites(rt: Rt, request: Request) -> list[dict[str, Any]]:
    return [asdict(site) for site in rt.registry.sites.values() if visible(request, site.id)]


def _owned(request: Request, rt: Runtime, site_id: str, tenant: str | None = None) -> None:
    """An enterprise's token writes only its own sites, and never takes over another
    enterprise's id (a city admin may move a site)."""
    caller = tenant_of(request)
    existing = rt.registry.sites.get(site_id)
    if caller is None:
        return
    if tenant is not None and tenant != caller:
        raise HTTPException(403, f"this token writes the sites of {caller!r} only")
    if existing is not None and existing.tenant != caller:
        raise HTTPException(409, f"site id {site_id!r} is taken")


@router.post("/sites", status_code=201)
async def create_site(body: SiteIn, rt: Rt, request: Request) -> dict[str, Any]:
    _owned(request, rt, body.id, body.tenant)
    site = body.to_model()
    await rt.service.add_site(site)
    return asdict(site)


@router.get("/sensors")
async def list_sensors(rt: Rt, request: Request, site: str | None = None) -> list[dict[str, Any]]:
    return [
        asdict(s)
        for s in rt.registry.sensors.values()
        if (site is None or s.site == site) and visible(request, s.site)
    ]


@router.post("/sensors", status_code=201)
async def create_sensor(body: SensorIn, rt: Rt, request: Request) -> dict[str, Any]:
    if body.site in rt.registry.sites:
        _owned(request, rt, body.site)
    existing = rt.registry.sensors.get(body.id)
    if existing is not None and not visible(request, existing.site):
        raise HTTPException(409, f"sensor id {body.id!r} is taken")
    sensor = body.to_model()
    try:
        await rt.service.add_sensor(sensor)
    except NotFoundError as err:
        raise HTTPException(409, f"site {body.site!r} does not exist; POST it first") from err
    return asdict(sensor)
