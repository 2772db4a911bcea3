"""MQTT scale-out through a shared subscription, against a real Mosquitto and Kafka.

Two gateways (each with its own client id and persistent session) in one share group on one
broker split the stream: every reading reaches the readings topic exactly once, and both
gateways take part.  Before, each gateway subscribed the plain filter, so every gateway
received (and forwarded) every message.
"""

from __future__ import annotations

import re
from collections import Counter

import aiomqtt
import orjson
import pytest

from monitor.config import Settings
from monitor.testing import RunningService, running_service
from tests.integration.helpers import now
from tests.integration.kafka_helpers import read_all

pytestmark = pytest.mark.integration
MESSAGES = 400


def forwarded(metrics: str) -> float:
    found = re.search(r'riskmon_gateway_forwarded_records_total\{source="mqtt"\} (\S+)', metrics)
    return float(found.group(1)) if found else 0.0


async def test_two_gateways_in_one_group_forward_each_reading_once(
    settings: Settings, kafka_bootstrap: str, kafka_topics: tuple[str, str]
) -> None:
    port = int(settings.mqtt_url.rsplit(":", 1)[1])
    gateway = settings.model_copy(
        update={
            "role": "gateway",
            "kafka_bootstrap_servers": kafka_bootstrap,
            "kafka_topic": kafka_topics[0],
            "kafka_dlq_topic": kafka_topics[1],
        }
    )
    one = gateway.model_copy(update={"mqtt_client_id": f"{settings.mqtt_client_id}-a"})
    two = gateway.model_copy(update={"mqtt_client_id": f"{settings.mqtt_client_id}-b"})
    async with running_service(one) as a, running_service(two) as b:
        t = now() - 60
        async with aiomqtt.Client("127.0.0.1", port, identifier=f"pub-{port}") as pub:
            for i in range(MESSAGES):
                body = {"sensor": ("gas-1", "gas-2")[i % 2], "ts": t + i * 0.01, "value": 1.0}
                await pub.publish("riskmon/v1/t1/s1/readings", orjson.dumps(body), qos=1)

        records = await read_all(kafka_bootstrap, kafka_topics[0], MESSAGES, timeout_ms=30_000)
        extra = await read_all(kafka_bootstrap, kafka_topics[0], MESSAGES + 1, timeout_ms=2_000)
        readings = Counter(
            (r["sensor"], r["ts"])
            for rec in extra
            for r in (lambda v: v if isinstance(v, list) else [v])(orjson.loads(rec.value))
        )
        assert len(records) >= MESSAGES and len(readings) == MESSAGES
        assert max(readings.values()) == 1, "a reading reached Kafka twice"
        taken = [forwarded(await _metrics(svc)) for svc in (a, b)]
        assert sum(taken) == MESSAGES, taken  # no message went to both gateways
        assert all(n > 0 for n in taken), taken  # both took part


async def _metrics(svc: RunningService) -> str:
    async with svc.client() as api:
        return (await api.get("/metrics")).text
