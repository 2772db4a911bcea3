"""The FastAPI application."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Response
from fastapi.responses import HTMLResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from monitor.api import alerts, catalog, noise, readings, reports, rules, stream
from monitor.api.auth import Token, authorize
from monitor.app import Runtime


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        dependencies=[Depends(authorize)],
        title="riskmon",
        description="Risk monitoring and early warning: sensors, rules, graded alerts.",
        version="0.1.0",
    )
    app.state.runtime = runtime
    app.state.tokens = {t.token: t for t in map(Token.model_validate, runtime.settings.tokens)}
    for module in (catalog, readings, rules, alerts, noise, stream, reports):
        app.include_router(module.router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz(response: Response) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        try:
            async with runtime.db.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as err:  # any failure means not ready
            checks["database"] = f"error: {err.__class__.__name__}"
        failure = runtime.pipeline.store_failure
        checks["store"] = (
            "ok"
            if failure is None
            else f"failing for {runtime.clock.now() - failure.since:.0f}s "
            f"({failure.attempts} attempts): {failure.reason}"
        )
        if runtime.mqtt is not None:
            checks["mqtt"] = "ok" if runtime.mqtt.connected else "disconnected"
        if runtime.forwarder is not None:
            checks["kafka"] = (
                "ok"
                if runtime.forwarder.ready
                else (f"refusing input: {runtime.forwarder.last_error}")
            )
        if runtime.kafka is not None:
            checks["kafka"] = "ok" if runtime.kafka.connected else "not connected"
        checks["role"] = runtime.role
        checks["queue"] = runtime.pipeline.queue.qsize()
        ready = all(v == "ok" for k, v in checks.items() if k not in ("queue", "role"))
        response.status_code = 200 if ready else 503
        return {"ready": ready, "checks": checks}

    page = (Path(__file__).parent.parent / "console" / "index.html").read_text()

    @app.get("/console", tags=["console"], response_class=HTMLResponse)
    async def console() -> str:
        """The control-room console: live board, acknowledge and dispose, site filter, and a
        visible and audible cue for a new red alert."""
        return page

    @app.get("/metrics", tags=["health"])
    async def metrics() -> Response:
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
