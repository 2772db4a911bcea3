"""Sites and sensors."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request

from monitor.api.deps import runtime, visible
from monitor.app import Runtime
from monitor.errors import NotFoundError
from monitor.schemas import SensorIn, SiteIn

router = APIRouter(prefix="/api/v1", tags=["registry"])
Rt = Annotated[Runtime, Depends(runtime)]


@router.get("/sites")
async def list_sites(rt: Rt, request: Request) -> list[dict[str, Any]]:
    return [asdict(site) for site in rt.registry.sites.values() if visible(request, site.id)]


@router.post("/sites", status_code=201)
async def create_site(body: SiteIn, rt: Rt) -> dict[str, Any]:
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
async def create_sensor(body: SensorIn, rt: Rt) -> dict[str, Any]:
    sensor = body.to_model()
    try:
        await rt.service.add_sensor(sensor)
    except NotFoundError as err:
        raise HTTPException(422, f"site {body.site!r} does not exist") from err
    return asdict(sensor)
