"""MQTT source (aiomqtt): QoS 1, persistent session, reconnect with backoff, and
acknowledgement only after the pipeline has stored the message.

aiomqtt does not expose paho's manual acknowledgement, so the source turns it on in the
underlying paho client.  A message is acknowledged only on the connection that delivered it;
after a reconnect the broker redelivers what was not acknowledged (stored writes are
idempotent, so the replay changes nothing).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.raw import RawMessage, parse_topic

log = logging.getLogger(__name__)
SOURCE = "mqtt"


@dataclass(frozen=True)
class MqttConfig:
    host: str
    port: int
    client_id: str
    topic: str
    username: str | None = None
    password: str | None = None
    session_expiry_s: int = 86_400
    # MQTT v5 Receive Maximum: messages in flight to us awaiting our (after-store) PUBACK.
    receive_maximum: int = 1000
    backoff_max_s: float = 30.0
    tls: bool = False
    ca_file: str | None = None


class MqttSource:
    def __init__(
        self,
        config: MqttConfig,
        submit: Callable[[RawMessage], Awaitable[None]],
        on_state: Callable[[bool], None] = lambda up: None,
    ) -> None:
        self.config = config
        self.submit = submit
        self.on_state = on_state
        self.connected = False
        self._generation = 0

    async def run(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._session()
                delay = 0.5
            except Exception as err:  # any failure: reconnect; unacked input is redelivered
                self._set_connected(False)
                log.warning(
                    "MQTT %s:%s session ended (%s); reconnecting in %.1fs",
                    self.config.host,
                    self.config.port,
                    err,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.backoff_max_s)

    def _set_connected(self, up: bool) -> None:
        self.connected = up
        self.on_state(up)

    async def _session(self) -> None:
        c = self.config
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = c.session_expiry_s
        props.ReceiveMaximum = c.receive_maximum
        client = aiomqtt.Client(
            c.host,
            c.port,
            identifier=c.client_id,
            username=c.username,
            password=c.password,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=props,
            tls_context=ssl.create_default_context(cafile=c.ca_file) if c.tls else None,
            max_queued_incoming_messages=0,
        )
        paho = client._client
        paho.manual_ack_set(True)
        async with client:
            self._generation += 1
            generation = self._generation
            self._set_connected(True)
            log.info("MQTT connected to %s:%s, subscribing %s", c.host, c.port, c.topic)
            await client.subscribe(c.topic, qos=1)
            async for message in client.messages:
                payload = message.payload
                if not isinstance(payload, bytes | bytearray):
                    payload = str(payload).encode()
                topic = message.topic.value
                parsed = parse_topic(topic)
                tenant, site = parsed if parsed else (None, None)
                mid, qos = message.mid, message.qos

                def ack(
                    _outcome: object, mid: int = mid, qos: int = qos, generation: int = generation
                ) -> None:
                    if qos and generation == self._generation and self.connected:
                        paho.ack(mid, qos)

                await self.submit(
                    RawMessage(
                        bytes(payload),
                        SOURCE,
                        time.time(),
                        topic=topic,
                        tenant=tenant,
                        site=site or "",
                        done=ack,
                    )
                )
