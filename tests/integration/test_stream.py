"""The live alert stream (SSE) with its filters."""

from __future__ import annotations

import asyncio
import json

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


async def test_console_page_is_served(settings: Settings) -> None:
    cfg = settings.model_copy(update={"mqtt_url": ""})
    async with running_service(cfg) as svc, svc.client() as api:
        page = await api.get("/console")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        for needle in (
            'EventSource("/api/v1/stream?token="',
            "acknowledge",
            "dispose",
            'id="site"',
            "NEW RED ALERT",
            "AudioContext",
        ):
            assert needle in page.text
