"""Transports for the simulators, with the pinned formats: MQTT (topic
``riskmon/v1/{tenant}/{site}/readings``, QoS 1), Kafka (the readings topic, key = site, the
``riskmon-tenant`` and ``riskmon-site`` headers) and HTTPS/HTTP (``POST /api/v1/readings``
with an ingest key).  The payload is a JSON reading or array of readings."""

from __future__ import annotations

import asyncio
import uuid
from typing import Protocol

import aiomqtt
import httpx
from aiokafka import AIOKafkaProducer


class Transport(Protocol):
    async def send(self, tenant: str, site: str, payload: bytes) -> None: ...

    async def close(self) -> None: ...


class MqttTransport:
    def __init__(self, url: str, client_id: str | None = None) -> None:
        host, _, port = url.removeprefix("mqtt://").partition(":")
        client_id = client_id or f"riskmon-sim-{uuid.uuid4().hex[:8]}"  # unique per process
        self.client = aiomqtt.Client(host, int(port or 1883), identifier=client_id)

    async def start(self) -> MqttTransport:
        await self.client.__aenter__()
        return self

    async def send(self, tenant: str, site: str, payload: bytes) -> None:
        await self.client.publish(f"riskmon/v1/{tenant}/{site}/readings", payload, qos=1)

    async def close(self) -> None:
        await self.client.__aexit__(None, None, None)


class KafkaTransport:
    def __init__(self, bootstrap: str, topic: str = "riskmon.readings") -> None:
        self.topic = topic
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        self.pending: list[asyncio.Future[object]] = []

    async def start(self) -> KafkaTransport:
        await self.producer.start()
        return self

    async def send(self, tenant: str, site: str, payload: bytes) -> None:
        headers = [("riskmon-tenant", tenant.encode()), ("riskmon-site", site.encode())]
        self.pending.append(
            await self.producer.send(self.topic, payload, key=site.encode(), headers=headers)
        )
        if len(self.pending) >= 1000:
            await self.flush()

    async def flush(self) -> None:
        await asyncio.gather(*self.pending)
        self.pending.clear()

    async def close(self) -> None:
        await self.flush()
        await self.producer.stop()


class HttpTransport:
    def __init__(self, base_url: str, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30)

    async def start(self) -> HttpTransport:
        return self

    async def send(self, tenant: str, site: str, payload: bytes) -> None:
        answer = await self.client.post(
            "/api/v1/readings", content=payload, headers={"Content-Type": "application/json"}
        )
        if answer.status_code >= 500 or answer.status_code in (401, 403):
            answer.raise_for_status()

    async def close(self) -> None:
        await self.client.aclose()


async def open_transport(
    kind: str, *, mqtt: str, kafka: str, http: str, token: str | None, topic: str
) -> MqttTransport | KafkaTransport | HttpTransport:
    if kind == "mqtt":
        return await MqttTransport(mqtt).start()
    if kind == "kafka":
        return await KafkaTransport(kafka, topic).start()
    return await HttpTransport(http, token).start()
