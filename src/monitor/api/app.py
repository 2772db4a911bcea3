"""The FastAPI application."""

from __future__ import annotations

import logging
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from monitor.api import (
    alerts,
    catalog,
    console,
    contract,
    noise,
    readings,
    reports,
    risk,
    risk_models,
    rules,
    stream,
)
from monitor.api.auth import SignInGuard, Token, authorize
from monitor.app import Runtime

log = logging.getLogger(__name__)


def http_server(runtime: Runtime, host: str, port: int) -> uvicorn.Server:
    """The HTTP server of a node (the CLI's and the tests' alike).  The app keeps it, so that
    open live streams end as soon as it is told to exit (consoles reconnect and replay)."""
    app = create_app(runtime)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    )
    app.state.server = server
    return server


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        dependencies=[Depends(authorize)],
        docs_url=None,  # served by monitor.api.console from local files
        redoc_url=None,
        title="riskmon",
        description="Risk monitoring and early warning: sensors, rules, graded alerts.",
        version="0.1.0",
    )
    app.state.runtime = runtime
    app.state.tokens = {t.token: t for t in map(Token.model_validate, runtime.settings.tokens)}
    app.state.sign_in = SignInGuard(
        runtime.settings.auth_failures_max, runtime.settings.auth_failure_window_s
    )
    for module in (catalog, readings, rules, alerts, noise, stream, reports, risk, risk_models):
        app.include_router(module.router)
    console.install(app)
    guard_input(app)
    contract.install(app)

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

    @app.get("/metrics", tags=["health"])
    async def metrics() -> Response:
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _unstorable(text: str) -> bool:
    """NUL or a lone surrogate: text PostgreSQL cannot keep or compare."""
    return "\x00" in text or any("\ud800" <= c <= "\udfff" for c in text)


def guard_input(app: FastAPI) -> None:
    """Input the store cannot take is a clear 422, and a store that fails is a 503 with the
    reason: never a 500 with a traceback."""

    @app.middleware("http")
    async def refuse_unstorable(request: Request, call_next: Any) -> Any:
        parts = [request.url.path, *request.query_params.keys(), *request.query_params.values()]
        if any(_unstorable(p) for p in parts):
            return JSONResponse(
                {"detail": "NUL or an unpaired surrogate in the path or query"}, status_code=422
            )
        return await call_next(request)

    @app.exception_handler(DBAPIError)
    async def store_error(request: Request, err: DBAPIError) -> JSONResponse:
        first = str(err.orig).splitlines()[0] if err.orig is not None else str(err)
        if isinstance(err, DataError | IntegrityError):
            return JSONResponse({"detail": f"the store refused a value: {first}"}, 422)
        log.error("%s %s: the store failed (%s)", request.method, request.url.path, first)
        return JSONResponse({"detail": f"the store is unavailable: {first}"}, 503)
