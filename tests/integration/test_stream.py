"""The live alert stream (SSE) with its filters."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest

from monitor.config import Settings
from monitor.testing import running_service
from tests.integration.helpers import now

pytestmark = pytest.mark.integration


async def test_stream_delivers_filtered_alert_events(settings: Settings) -> None:
    cfg = settings.model_copy(update={"mqtt_url": ""})
    async with running_service(cfg) as svc, svc.client() as api:
        got: list[dict[str, object]] = []

        async def listen() -> None:
            async with api.stream(
                "GET", "/api/v1/stream", params={"site": "s2", "level": 2}
            ) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        got.append(json.loads(line[6:]))
                        return

        task = asyncio.create_task(listen())
        await asyncio.sleep(0.3)
        t = now()
        await api.post(
            "/api/v1/readings",
            json=[
                {"sensor": "gas-1", "ts": t, "value": 55},  # another site: filtered out
                {"sensor": "ch4-1", "ts": t, "value": 6},  # blue: below the level filter
            ],
        )
        await api.post("/api/v1/readings", json={"sensor": "ch4-1", "ts": t + 1, "value": 55})
        await asyncio.wait_for(task, 5)
        (event,) = got
        assert event["kind"] == "escalated"
        assert event["alert"]["site"] == "s2" and event["alert"]["level"] == 1  # type: ignore[index]


async def test_console_page_and_its_assets_are_served_locally(settings: Settings) -> None:
    """No token needed for the page and its files, and nothing is fetched from elsewhere: every
    script and style the page names is one of riskmon's own (the browser test blocks the
    network and drives it)."""
    cfg = settings.model_copy(update={"mqtt_url": ""})
    async with running_service(cfg) as svc, httpx.AsyncClient(base_url=svc.base_url) as anon:
        page = await anon.get("/console")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert (
            "/console/assets/app.js" in assets
            and "/console/assets/vendor/uPlot.iife.min.js" in assets
        )
        for asset in assets:
            if asset.startswith("data:"):
                continue
            assert asset.startswith("/console/assets/"), asset
            got = await anon.get(asset)
            assert got.status_code == 200 and len(got.content) > 100, asset
        assert (await anon.get("/console/assets/../config.py")).status_code == 404
        assert (await anon.get("/api/v1/me")).status_code == 401  # the data still needs a token
        spec = (await anon.get("/openapi.json")).json()
        assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        assert spec["paths"]["/healthz"]["get"]["security"] == []


async def _first_events(
    api: httpx.AsyncClient, n: int, **headers: str
) -> list[tuple[str, dict[str, Any]]]:
    """The first ``n`` alert events of a new connection, with their ids."""
    out: list[tuple[str, dict[str, Any]]] = []
    event_id = ""
    async with api.stream("GET", "/api/v1/stream", headers=headers) as response:
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: ") and event_id:
                out.append((event_id, json.loads(line[6:])))
                if len(out) == n:
                    return out
    return out


async def test_a_reconnect_with_last_event_id_misses_nothing(settings: Settings) -> None:
    """Events stored while a client was away are replayed from its Last-Event-ID on, in order;
    the event it had is sent again (same id) and the client drops it."""
    cfg = settings.model_copy(update={"mqtt_url": ""})
    async with running_service(cfg) as svc, svc.client() as api:
        t = now()
        first = asyncio.create_task(_first_events(api, 1))
        await asyncio.sleep(0.3)
        await api.post("/api/v1/readings", json={"sensor": "gas-1", "ts": t, "value": 30})
        ((seen_id, seen),) = await asyncio.wait_for(first, 5)
        assert seen["kind"] == "opened" and seen_id.isdigit()
        # away: the yellow escalates to orange, a red opens elsewhere
        await api.post("/api/v1/readings", json={"sensor": "gas-1", "ts": t + 1, "value": 55})
        await api.post("/api/v1/readings", json={"sensor": "ch4-1", "ts": t + 1, "value": 60})
        replay = await asyncio.wait_for(_first_events(api, 3, **{"Last-Event-ID": seen_id}), 5)
        assert replay[0][0] == seen_id  # the one it had, dropped by the client
        kinds = [(e["kind"], e["alert"]["sensor"], e["level"]) for _, e in replay[1:]]
        assert kinds == [("escalated", "gas-1", 2), ("opened", "ch4-1", 1)]
        assert [int(i) for i, _ in replay] == sorted(int(i) for i, _ in replay)
        bad = await api.get("/api/v1/stream", headers={"Last-Event-ID": "yesterday"})
        assert bad.status_code == 422 and "Last-Event-ID" in bad.json()["detail"]
