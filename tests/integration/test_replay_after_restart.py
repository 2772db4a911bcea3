"""A replay after a restart changes nothing (against the real services).

The outside probe killed riskmon after the batch that resolved an alert was committed but
before its PUBACKs reached the broker; the broker redelivered those readings to the new
process, whose watermarks started empty, and they opened a second alert for the episode.
Here the same messages are delivered again over MQTT to a new process, exactly as the broker
does, and a device resends one reading long after it was judged (NB-IoT): no alert, no event.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from monitor.config import Settings
from monitor.testing import running_service
from tests.integration.helpers import now, publish, wait_for

pytestmark = pytest.mark.integration
TOPIC = "riskmon/v1/t1/s1/readings"


async def history(api: httpx.AsyncClient) -> list[tuple[str, str, int]]:
    rows = (await api.get("/api/v1/alerts", params={"limit": 1000})).json()
    out = []
    for row in rows:
        if row["category"] == "data_interruption":  # timers, not readings
            continue
        for h in (await api.get(f"/api/v1/alerts/{row['id']}")).json()["history"]:
            out.append((row["id"], h["kind"], h["level"]))
    return sorted(out)


async def test_redelivered_episode_after_a_restart_opens_nothing(settings: Settings) -> None:
    port = int(settings.mqtt_url.rsplit(":", 1)[1])
    t = now() - 120
    episode: list[dict[str, Any]] = [
        {"sensor": "gas-1", "ts": t, "value": 30},  # yellow
        {"sensor": "gas-1", "ts": t + 10, "value": 60},  # orange
        # the batch that resolved the alert: its PUBACKs are lost, the broker redelivers it
        {"sensor": "gas-1", "ts": t + 15, "value": 60},
        {"sensor": "gas-1", "ts": t + 20, "value": 2},  # cleared
        {"sensor": "gas-2", "ts": t + 20, "value": 1},
    ]
    async with running_service(settings) as svc, svc.client() as api:
        for reading in episode:
            await publish(port, TOPIC, reading)

        async def resolved() -> bool:
            rows = (await api.get("/api/v1/alerts")).json()
            return any(not r["active"] and r["rule"] == "gas_combustible.high" for r in rows)

        await wait_for(resolved)
        before = await history(api)
    async with running_service(settings) as svc, svc.client() as api:
        await publish(port, TOPIC, episode[2:])  # the broker's redelivery to the new process
        # an NB-IoT resend of a judged reading, long after (the too-late path)
        late = {"sensor": "gas-1", "ts": t + 10, "value": 60}
        assert (await api.post("/api/v1/readings", json=late)).status_code == 200
        await publish(port, TOPIC, {"sensor": "gas-2", "ts": t + 30, "value": 1})

        async def drained() -> bool:  # the last message is stored: all before it are judged
            params = {"bucket": "raw", "from": str(t + 29), "to": str(t + 31)}
            got = (await api.get("/api/v1/sensors/gas-2/readings", params=params)).json()
            return bool(got["readings"])

        await wait_for(drained)
        assert await history(api) == before
        metrics = (await api.get("/metrics")).text
        assert "riskmon_pipeline_duplicates_dropped_total 4.0" in metrics
        gas = [a for a in (await api.get("/api/v1/alerts")).json() if a["sensor"] == "gas-1"]
        assert len([a for a in gas if a["rule"] == "gas_combustible.high"]) == 1
        assert not any(a["retrospective"] for a in gas)
