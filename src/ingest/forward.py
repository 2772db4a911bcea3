"""Gateway: forward raw input to the readings topic, keyed by site.

MQTT messages keep their payload; the topic's site is the key.  An HTTP batch is split by the
site of each reading's sensor (``site_of``), so every site's readings land in its partition.
The transport message is acknowledged (MQTT PUBACK, HTTP answer) only after Kafka has
acknowledged every record made from it.  While Kafka is unreachable the gateway refuses input
(``ready`` is false) instead of buffering it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ingest.decode import DecodeFailure, decode_payload
from ingest.kafka import HEADER_PREFIX, KafkaConfig, client_options
from ingest.raw import RawMessage

log = logging.getLogger(__name__)
UNKNOWN_SITE = "_unknown"


@dataclass(slots=True)
class Forwarded:
    records: int
    readings: int


def split_by_site(
    msg: RawMessage, site_of: Callable[[str], str | None]
) -> list[tuple[str, bytes, int]]:
    """(key, value, readings) records for one message."""
    if msg.site is not None:
        return [(msg.site, msg.payload, 1)]
    try:
        items = decode_payload(msg.payload)
    except DecodeFailure:
        return [(UNKNOWN_SITE, msg.payload, 0)]  # the processor rejects it with the reason
    groups: dict[str, list[Any]] = {}
    for item in items:
        sensor = item.get("sensor") if isinstance(item, dict) else None
        site = site_of(sensor) if isinstance(sensor, str) else None
        groups.setdefault(site or UNKNOWN_SITE, []).append(item)
    out = []
    for site, group in groups.items():
        try:
            value = orjson.dumps(group)
        except TypeError:  # NaN/Infinity read by the lenient parser: keep them visible
            value = json.dumps(group).encode()
        out.append((site, value, len(group)))
    return out


class KafkaForwarder:
    def __init__(
        self,
        config: KafkaConfig,
        site_of: Callable[[str], str | None],
        on_forward: Callable[[str, int], None] = lambda source, n: None,
        max_in_flight: int = 20_000,
    ) -> None:
        self.config = config
        self.site_of = site_of
        self.on_forward = on_forward
        self.ready = False
        self.last_error: str | None = "not connected yet"
        self._producer: AIOKafkaProducer | None = None
        self._slots = asyncio.Semaphore(max_in_flight)
        self._last: asyncio.Future[Any] = asyncio.Future()

    async def run(self) -> None:
        """Connect (retrying, and saying so) and stay connected until cancelled."""
        delay = 0.5
        while True:
            producer = AIOKafkaProducer(
                client_id=f"{self.config.client_id}-gateway",
                acks="all",
                linger_ms=5,
                **client_options(self.config),
            )
            try:
                await producer.start()
            except KafkaError as err:
                self.last_error = f"Kafka {self.config.bootstrap_servers} unreachable: {err}"
                log.error(
                    "%s; input is refused until it answers (retry in %.1fs)", self.last_error, delay
                )
                await producer.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            self._producer, self.ready, self.last_error = producer, True, None
            log.info("gateway connected to Kafka %s", self.config.bootstrap_servers)
            try:
                await asyncio.Event().wait()
            finally:
                self.ready = False
                await producer.stop()

    async def forward(self, msg: RawMessage) -> Forwarded:
        """Produce one message's records; calls ``msg.done`` once Kafka acknowledged them all.
        Returns without waiting for the acknowledgement (MQTT keeps many in flight)."""
        producer = self._producer
        if producer is None or not self.ready:
            raise KafkaError(self.last_error or "Kafka is not connected")
        records = split_by_site(msg, self.site_of)
        headers = [
            (f"{HEADER_PREFIX}origin", msg.source.encode()),
            (f"{HEADER_PREFIX}received", repr(msg.received).encode()),
        ]
        if msg.topic:
            headers.append((f"{HEADER_PREFIX}topic", msg.topic.encode()))
        if msg.tenant:
            headers.append((f"{HEADER_PREFIX}tenant", msg.tenant.encode()))
        if msg.site:
            headers.append((f"{HEADER_PREFIX}site", msg.site.encode()))
        futures = []
        for key, value, _ in records:
            await self._slots.acquire()
            future = await producer.send(
                self.config.topic, value, key=key.encode(), headers=headers
            )
            future.add_done_callback(lambda _f: self._slots.release())
            futures.append(future)
        result = Forwarded(len(records), sum(n for _, _, n in records))
        acked = asyncio.gather(*futures)

        def acknowledged(f: asyncio.Future[Any]) -> None:
            if f.cancelled() or f.exception() is not None:
                log.error(
                    "Kafka did not acknowledge a %s message; it stays unacknowledged upstream",
                    msg.source,
                )
                return
            self.on_forward(msg.source, len(records))
            if msg.done is not None:
                msg.done(result)

        acked.add_done_callback(acknowledged)
        self._last = acked
        return result

    async def forward_and_wait(self, msg: RawMessage) -> Forwarded:
        """Forward and wait for Kafka's acknowledgement (HTTP ingest)."""
        result = await self.forward(msg)
        await asyncio.wait_for(self._last, 30)
        return result
