"""Bounded memory under MQTT overload, against a real Mosquitto.

The outside probe published 300,000 QoS 1 messages faster than riskmon stores them; riskmon
grew to 1.5 GB with 144,120 messages in aiomqtt's own queue.  Here ``mosquitto_pub`` floods
the service with single-reading messages much faster than it stores them, with a small
intake bound: what riskmon holds (taken and not stored, plus the client's queue) stays near
the bound, reading pauses and resumes, and every reading is stored in the end.
"""

from __future__ import annotations

import asyncio
import shutil
import time

import orjson
import pytest
from sqlalchemy import text

from monitor.config import Settings
from monitor.testing import running_service
from tests.integration.helpers import now

pytestmark = pytest.mark.integration
MESSAGES = 12_000
BOUND = 300
SENSORS = ("gas-1", "gas-2", "lvl-1")


@pytest.mark.timeout(300)
@pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="mosquitto-clients missing")
async def test_intake_stays_bounded_and_nothing_is_lost(settings: Settings) -> None:
    cfg = settings.model_copy(update={"mqtt_max_intake": BOUND})
    port = int(settings.mqtt_url.rsplit(":", 1)[1])
    t = now() - 200
    lines = b"".join(
        orjson.dumps({"sensor": SENSORS[i % 3], "ts": t + i * 0.005, "value": 1.0}) + b"\n"
        for i in range(MESSAGES)
    )
    async with running_service(cfg) as svc:
        source = svc.runtime.mqtt
        assert source is not None
        publisher = await asyncio.create_subprocess_exec(
            "mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-l",
            "-t", "riskmon/v1/t1/s1/readings", "--id", f"overload-{port}",
            stdin=asyncio.subprocess.PIPE,
        )  # fmt: skip
        feed = asyncio.create_task(publisher.communicate(lines))
        peak, stored, deadline = 0, 0, time.monotonic() + 240
        keys = [svc.runtime.registry.keys[s] for s in SENSORS]
        while stored < MESSAGES and time.monotonic() < deadline:
            peak = max(peak, source.held())
            await asyncio.sleep(0.01)
            if int(time.monotonic() * 10) % 10 == 0:
                async with svc.runtime.db.connect() as conn:
                    stored = (
                        await conn.execute(
                            text("SELECT count(*) FROM readings WHERE sensor_key = ANY(:k)"),
                            {"k": keys},
                        )
                    ).scalar_one()
        await feed
        assert stored == MESSAGES, f"{stored} of {MESSAGES} stored"
        assert source.pauses > 0, "the flood never filled the intake: not an overload"
        # bounded: the intake bound plus what one socket read can parse before the pause
        assert peak <= BOUND * 4, f"held {peak} messages at once (bound {BOUND})"
        metrics = (await svc.client().get("/metrics")).text
        assert "riskmon_mqtt_intake_messages" in metrics
