"""The control-room console: its page and assets (all shipped in the package, no CDN), the
local Swagger UI at ``/docs``, and the three small calls the console needs: who is signed in,
its settings (time zone, SLAs, reason codes, district outlines), and which sensors report."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from alerts.model import ReasonCode
from monitor import districts
from monitor.api.deps import runtime, tenant_of
from monitor.app import Runtime
from monitor.clock import to_datetime

router = APIRouter(prefix="/api/v1", tags=["console"])
Rt = Annotated[Runtime, Depends(runtime)]
ASSETS = Path(str(resources.files("monitor") / "console"))
VENDOR = ASSETS / "vendor"


@router.get("/me")
async def me(request: Request) -> dict[str, Any]:
    """The person signed in: name, role and enterprise (401 for a token not known)."""
    who = request.state.identity
    return {"name": who.name, "role": who.role, "tenant": who.tenant}


@router.get("/console/settings")
async def console_settings(rt: Rt) -> dict[str, Any]:
    """What the console shows times in, the SLAs it counts down, the disposal reason codes and
    the optional district outlines (GeoJSON) drawn under the map."""
    s = rt.settings
    return {
        "time_zone": s.console_time_zone,
        "sla_ack_s": {str(k): v for k, v in sorted(s.sla_ack_s.items())},
        "sla_dispose_s": {str(k): v for k, v in sorted(s.sla_dispose_s.items())},
        "reason_codes": [code.value for code in ReasonCode],
        "districts": None if s.console_districts is None else districts.read(s.console_districts),
    }


@router.get("/status")
async def status(request: Request, rt: Rt) -> dict[str, Any]:
    """How many of the caller's sensors report (a reading within three of their intervals)
    and when the newest reading arrived: the console's "all clear" line."""
    tenant = tenant_of(request)
    reg = rt.registry
    keys = np.array(
        [
            key
            for sensor_id, key in reg.keys.items()
            if tenant is None or reg.sites[reg.sensors[sensor_id].site].tenant == tenant
        ],
        np.int32,
    )
    seen = rt.pipeline.freshness.summary(keys, reg.interval[keys], rt.clock.now())
    last = seen.last_received
    return {
        "sensors": seen.sensors,
        "reporting": seen.reporting,
        "last_reading_at": None if last is None else to_datetime(last).isoformat(),
    }


def install(app: FastAPI) -> None:
    """The page at ``/console``, its assets at ``/console/assets`` and Swagger UI at ``/docs``
    from the same local files (``make`` copies the vendored libraries, see deploy/console)."""
    page = (ASSETS / "index.html").read_text(encoding="utf-8")
    app.mount("/console/assets", StaticFiles(directory=ASSETS, check_dir=True), name="assets")
    app.include_router(router)

    @app.get("/console", tags=["console"], response_class=HTMLResponse)
    async def console() -> str:
        """The control-room console (see README, Console)."""
        return page

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if not (VENDOR / "swagger-ui-bundle.js").is_file():
            raise HTTPException(
                503, "the Swagger UI files are missing: run make (it copies them into the package)"
            )
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="riskmon API",
            swagger_js_url="/console/assets/vendor/swagger-ui-bundle.js",
            swagger_css_url="/console/assets/vendor/swagger-ui.css",
            swagger_favicon_url="/console/assets/vendor/favicon-32x32.png",
        )
