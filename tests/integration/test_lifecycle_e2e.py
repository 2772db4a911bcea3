"""The alert lifecycle end to end, against the real services (PostgreSQL, Mosquitto, HTTP).

- The defect that lost a red warning: a yellow gas alert acknowledged and closed early while
  the gas is still there, then the gas rises.  The rise is raised (in the API and on the SSE
  stream) within 2 s, whether the early close was refused or forced, over MQTT and HTTP, and
  the source is not stuck behind it.
- A cleared, unacknowledged red stays on the waiting list until someone acknowledges it.
- A store outage is loud (``/readyz``, metrics, 503 for input and actions) and loses nothing
  once the store answers.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import psycopg
import pytest

from monitor.config import Settings
from monitor.testing import RunningService, running_service
from tests.integration.helpers import alerts, now, publish, wait_for

pytestmark = pytest.mark.integration
GAS = "gas_combustible.high|gas-1"


class Stream:
    """Collects the SSE events of the alert stream while a test runs."""

    def __init__(self, api: httpx.AsyncClient) -> None:
        self.api = api
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Stream:
        self.task = asyncio.create_task(self._listen())
        await asyncio.sleep(0.3)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.task is not None
        self.task.cancel()

    async def _listen(self) -> None:
        async with self.api.stream("GET", "/api/v1/stream", timeout=None) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    self.events.append((time.monotonic(), json.loads(line[6:])))


async def send(svc: RunningService, api: httpx.AsyncClient, transport: str, reading: Any) -> None:
    if transport == "http":
        assert (await api.post("/api/v1/readings", json=reading)).status_code == 200
    else:
        port = int(svc.runtime.settings.mqtt_url.rsplit(":", 1)[1])
        await publish(port, "riskmon/v1/t1/s1/readings", reading)


async def gas_alert(api: httpx.AsyncClient) -> dict[str, Any] | None:
    active = [a for a in await alerts(api) if a["fingerprint"] == GAS and a["active"]]
    return active[0] if active else None


@pytest.mark.parametrize("close", ["refused", "forced"])
@pytest.mark.parametrize("transport", ["mqtt", "http"])
async def test_a_rise_after_an_early_close_is_raised(
    settings: Settings, transport: str, close: str
) -> None:
    async with running_service(settings) as svc, svc.client() as api, Stream(api) as stream:
        t = now()
        await send(svc, api, transport, {"sensor": "gas-1", "ts": t, "value": 30})
        yellow = await wait_for(lambda: gas_alert(api))
        assert yellow["level"] == 3
        url = f"/api/v1/alerts/{yellow['id']}"
        assert (await api.post(f"{url}/ack", json={"note": "seen"})).status_code == 200
        body = {"reason_code": "process_fluctuation", "note": "loading puff"}
        refused = await api.post(f"{url}/dispose", json=body)
        assert refused.status_code == 409
        assert "30.0" in refused.json()["detail"] and "set-point 25" in refused.json()["detail"]
        if close == "forced":
            forced = await api.post(
                f"{url}/dispose", json={**body, "force": True, "force_reason": "truck leaving"}
            )
            assert forced.status_code == 200 and forced.json()["state"] == "closed"
        sent = time.monotonic()
        await send(svc, api, transport, {"sensor": "gas-1", "ts": t + 1, "value": 45})
        await send(svc, api, transport, {"sensor": "gas-1", "ts": t + 2, "value": 70})

        async def raised() -> dict[str, Any] | None:
            found = await gas_alert(api)
            return found if found is not None and found["level"] == 2 else None

        orange = await wait_for(raised, timeout=2.0)
        assert time.monotonic() - sent < 2.0
        on_stream = await wait_for(
            _on_stream(stream, lambda e: e["alert"]["fingerprint"] == GAS and e["level"] == 2),
            timeout=2.0,
        )
        assert on_stream[0] - sent < 2.0
        history = (await api.get(f"/api/v1/alerts/{yellow['id']}")).json()["history"]
        if close == "forced":
            assert orange["id"] != yellow["id"] and orange["state"] == "open"
            assert on_stream[1]["kind"] == "opened"
            assert history[-1]["kind"] == "superseded"
            assert history[-1]["detail"]["by"] == orange["id"]
            forced_event = next(h for h in history if h["kind"] == "disposed")
            assert forced_event["detail"]["force_reason"] == "truck leaving"
        else:
            assert orange["id"] == yellow["id"] and orange["state"] == "acknowledged"
            assert on_stream[1]["kind"] == "escalated"
        # every event on the stream shows the state of its own moment
        opened = next(e for _, e in stream.events if e["kind"] == "opened")
        assert opened["alert"]["level"] == opened["level"] and opened["alert"]["state"] == "open"
        # the source is not stuck: the next readings are stored and judged
        await send(svc, api, transport, {"sensor": "gas-1", "ts": t + 3, "value": 2})
        await wait_for(lambda: _no_gas_alert(api), timeout=3.0)
        assert (await api.get("/readyz")).status_code == 200


def _on_stream(stream: Stream, match: Any) -> Any:
    async def probe() -> tuple[float, dict[str, Any]] | None:
        return next(((at, e) for at, e in stream.events if match(e)), None)

    return probe


async def _no_gas_alert(api: httpx.AsyncClient) -> bool:
    return await gas_alert(api) is None


async def test_a_cleared_unacknowledged_red_waits_until_acknowledged(settings: Settings) -> None:
    cfg = settings.model_copy(update={"mqtt_url": ""})
    async with running_service(cfg) as svc, svc.client() as api:
        t = now()
        await api.post("/api/v1/readings", json={"sensor": "ch4-1", "ts": t, "value": 60})
        await api.post("/api/v1/readings", json={"sensor": "ch4-1", "ts": t + 1, "value": 0.5})
        (red,) = await alerts(api, state="waiting")
        assert red["level"] == 1 and not red["active"] and red["isa_state"] == "rtn_unack"
        assert red["state"] == "resolved" and red["waiting"]
        # the gauges follow at the next tick: one may show the red still holding, so wait for both
        metrics = await wait_for(
            lambda: _metric(
                api, 'riskmon_alerts_waiting{level="1"} 1.0', 'riskmon_alerts_active{level="1"} 0.0'
            )
        )
        reached = 'riskmon_alerts_level_reached_total{category="process",level="1"} 1.0'
        assert reached in metrics
        # still listed after a restart
        assert (await api.get("/api/v1/alerts", params={"state": "waiting"})).json()
    async with running_service(cfg) as svc, svc.client() as api:
        assert [a["id"] for a in await alerts(api, state="waiting")] == [red["id"]]
        ack = await api.post(f"/api/v1/alerts/{red['id']}/ack", json={"note": "seen at 02:10"})
        assert ack.status_code == 200 and ack.json()["isa_state"] == "normal"
        assert await alerts(api, state="waiting") == []
        await wait_for(lambda: _metric(api, 'riskmon_alerts_waiting{level="1"} 0.0'))


async def _metric(api: httpx.AsyncClient, *needles: str) -> str | None:
    text = (await api.get("/metrics")).text
    return text if all(n in text for n in needles) else None


async def test_a_store_outage_is_loud_and_loses_nothing(settings: Settings, pg_server: str) -> None:
    database = settings.database_url.rsplit("/", 1)[1]
    async with (
        running_service(settings) as svc,
        svc.client() as api,
        await psycopg.AsyncConnection.connect(f"{pg_server}/postgres", autocommit=True) as admin,
    ):
        port = int(svc.runtime.settings.mqtt_url.rsplit(":", 1)[1])
        t = now()
        await publish(port, "riskmon/v1/t1/s1/readings", {"sensor": "gas-1", "ts": t, "value": 30})
        yellow = await wait_for(lambda: gas_alert(api))
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [database],
        )
        try:
            # readings arrive during the outage; one of them makes the alert orange
            batch = [{"sensor": "gas-1", "ts": t + i, "value": 30 + 5 * i} for i in range(1, 9)]
            await publish(port, "riskmon/v1/t1/s1/readings", batch)

            async def failing() -> dict[str, Any] | None:
                r = await api.get("/readyz")
                body: dict[str, Any] = r.json()
                return (
                    body if r.status_code == 503 and "failing" in body["checks"]["store"] else None
                )

            ready = await wait_for(failing, timeout=10)
            assert "OperationalError" in ready["checks"]["store"]
            metrics = (await api.get("/metrics")).text
            assert "riskmon_store_failing 1.0" in metrics
            assert "riskmon_store_write_failures_total" in metrics
            refused = await api.post(
                "/api/v1/readings", json={"sensor": "gas-1", "ts": t, "value": 1}
            )
            assert refused.status_code == 503 and "store is failing" in refused.json()["detail"]
            ack = await api.post(f"/api/v1/alerts/{yellow['id']}/ack")
            assert ack.status_code == 503 and "store is failing" in ack.json()["detail"]
        finally:
            await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')

        async def recovered() -> bool:
            return (await api.get("/readyz")).status_code == 200

        await wait_for(recovered, timeout=30)
        alert = (await api.get(f"/api/v1/alerts/{yellow['id']}")).json()
        assert alert["level"] == 2 and [h["kind"] for h in alert["history"]] == [
            "opened",
            "escalated",
        ]
        stored = (
            await api.get(
                "/api/v1/sensors/gas-1/readings",
                params={"bucket": "raw", "from": str(t - 1), "to": str(t + 60)},
            )
        ).json()
        assert len(stored["readings"]) == 9
        assert "riskmon_store_failing 0.0" in (await api.get("/metrics")).text


async def test_a_second_single_node_on_one_database_is_refused(settings: Settings) -> None:
    """Two single nodes would each track alerts and collide in the store (one-line error)."""
    from monitor.errors import ConfigError

    cfg = settings.model_copy(update={"mqtt_url": ""})
    async with running_service(cfg):
        with pytest.raises(ConfigError, match="another riskmon with role all"):
            async with running_service(cfg):
                pass
    async with running_service(cfg) as svc, svc.client() as api:  # released on stop
        assert (await api.get("/readyz")).status_code == 200
