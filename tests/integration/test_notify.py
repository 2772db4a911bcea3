"""Notifications to a real HTTP server on loopback: webhook, WeCom and DingTalk payloads,
retries for recoverable failures, none for permanent ones, the log; noise control."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route as Path

from monitor.config import Settings
from monitor.devservices import free_port, port_open
from monitor.testing import running_service
from tests.integration.helpers import alerts, now, wait_for

pytestmark = pytest.mark.integration


class Receiver:
    """A loopback HTTP server: records bodies; /flaky fails twice with 503; /bad answers 400."""

    def __init__(self) -> None:
        self.got: dict[str, list[Any]] = {}
        self.calls: dict[str, int] = {}

    async def handle(self, request: Request) -> JSONResponse:
        name = request.path_params["name"]
        self.calls[name] = self.calls.get(name, 0) + 1
        if name == "flaky" and self.calls[name] <= 2:
            return JSONResponse({"error": "busy"}, status_code=503)
        if name == "bad":
            return JSONResponse({"error": "bad key"}, status_code=400)
        self.got.setdefault(name, []).append(await request.json())
        return JSONResponse({"errcode": 0})


@contextlib.asynccontextmanager
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver()
    app = Starlette(routes=[Path("/{name}", rec.handle, methods=["POST"])])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    task = asyncio.create_task(server.serve())
    while not port_open("127.0.0.1", port):
        await asyncio.sleep(0.02)
    try:
        yield rec, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_channels_retries_and_log(settings: Settings) -> None:
    async with receiver() as (rec, base):
        routes = [
            {"channel": "webhook", "url": f"{base}/hook"},
            {"channel": "wecom", "url": f"{base}/wecom", "tenant": "t1"},
            {"channel": "dingtalk", "url": f"{base}/ding", "max_level": 2},
            {"channel": "webhook", "url": f"{base}/flaky", "site": "s1"},
            {"channel": "webhook", "url": f"{base}/bad", "site": "s1"},
        ]
        cfg = settings.model_copy(update={"mqtt_url": "", "notify_routes": routes})
        async with running_service(cfg) as svc, svc.client() as api:
            svc.runtime.notifier.backoff_s = 0.01
            await api.post("/api/v1/readings", json={"sensor": "gas-1", "ts": now(), "value": 55})
            (alert,) = await alerts(api, state="open")

            async def logged() -> list[dict[str, Any]]:
                rows: list[dict[str, Any]] = (
                    await api.get("/api/v1/notifications", params={"alert": alert["id"]})
                ).json()
                return rows if len(rows) >= 5 else []

            rows = await wait_for(logged, timeout=10)
            by_url = {r["url"].rsplit("/", 1)[1]: r for r in rows}
            assert by_url["hook"]["status"] == "sent" and by_url["hook"]["attempts"] == 1
            assert by_url["flaky"]["status"] == "sent" and by_url["flaky"]["attempts"] == 3
            assert by_url["bad"]["status"] == "failed" and by_url["bad"]["attempts"] == 1
            assert rec.calls["bad"] == 1  # permanent: no retry
            hook = rec.got["hook"][0]
            assert hook["event"] == "opened" and hook["alert"]["level"] == 2
            wecom = rec.got["wecom"][0]
            assert (
                wecom["msgtype"] == "markdown"
                and "gas_combustible.high" in wecom["markdown"]["content"]
            )
            ding = rec.got["ding"][0]
            assert ding["msgtype"] == "markdown" and {"title", "text"} <= ding["markdown"].keys()


async def test_silence_shelve_and_inhibition_hold_back_notifications(settings: Settings) -> None:
    async with receiver() as (_rec, base):
        cfg = settings.model_copy(
            update={
                "mqtt_url": "",
                "notify_routes": [{"channel": "webhook", "url": f"{base}/hook"}],
            }
        )
        async with running_service(cfg) as svc, svc.client() as api:
            t = now()
            sil = await api.post(
                "/api/v1/silences",
                json={"site": "s2", "ends": str(t + 3600), "reason": "maintenance of zone s2"},
            )
            assert sil.status_code == 201
            await api.post("/api/v1/readings", json={"sensor": "ch4-1", "ts": t, "value": 55})
            await api.post(
                "/api/v1/readings",
                json=[
                    {"sensor": "lvl-1", "ts": t, "value": 99.0},
                    {"sensor": "gas-2", "ts": t + 1, "value": 12},
                ],
            )
            await api.post("/api/v1/readings", json={"sensor": "gas-1", "ts": t, "value": 55})

            await asyncio.sleep(0.5)
            found = await alerts(api)
            ids = {a["sensor"]: a["id"] for a in found}
            rows = (await api.get("/api/v1/notifications")).json()
            status = {r["alert_id"]: (r["status"], r["reason"]) for r in rows}
            assert status[ids["ch4-1"]][0] == "suppressed"
            assert "silenced" in status[ids["ch4-1"]][1]
            assert status[ids["lvl-1"]][0] == "sent"  # orange: not held back by anything
            # shelving needs an expiry and holds back the next change of that alert
            bad = await api.post(
                f"/api/v1/alerts/{ids['gas-1']}/shelve", json={"reason": "x", "until": str(t - 1)}
            )
            assert bad.status_code == 422
            ok = await api.post(
                f"/api/v1/alerts/{ids['gas-1']}/shelve",
                json={"reason": "known fault", "until": str(t + 600)},
            )
            assert ok.status_code == 200
            await api.post("/api/v1/readings", json={"sensor": "gas-1", "ts": t + 5, "value": 1})
            await asyncio.sleep(0.5)
            rows = (await api.get("/api/v1/notifications", params={"alert": ids["gas-1"]})).json()
            assert any("shelved" in (r["reason"] or "") for r in rows)


async def test_silences_and_shelves_survive_a_restart(settings: Settings) -> None:
    cfg = settings.model_copy(update={"mqtt_url": ""})
    t = now()
    async with running_service(cfg) as svc, svc.client() as api:
        made = await api.post(
            "/api/v1/silences", json={"site": "s1", "ends": str(t + 3600), "reason": "calibration"}
        )
        gone = await api.post(
            "/api/v1/silences", json={"site": "s2", "ends": str(t + 3600), "reason": "short"}
        )
        assert (await api.delete(f"/api/v1/silences/{gone.json()['id']}")).status_code == 204
        await api.post("/api/v1/readings", json={"sensor": "gas-1", "ts": t, "value": 30})
        (alert,) = await alerts(api, state="open")
        await api.post(
            f"/api/v1/alerts/{alert['id']}/shelve", json={"reason": "known", "until": str(t + 600)}
        )
    async with running_service(cfg) as svc, svc.client() as api:
        ids = [s["id"] for s in (await api.get("/api/v1/silences")).json()]
        assert ids == [made.json()["id"]]
        assert alert["id"] in svc.runtime.notifier.noise.shelves
