"""MQTT source (aiomqtt): QoS 1, persistent session, reconnect with backoff, and
acknowledgement only after the pipeline has stored the message.

aiomqtt does not expose paho's manual acknowledgement, so the source turns it on in the
underlying paho client.  A message is acknowledged only on the connection that delivered it;
after a reconnect the broker redelivers what was not acknowledged (stored writes are
idempotent, so the replay changes nothing).

Intake is bounded here, not by the broker: Mosquitto stops honouring the client's Receive
Maximum once acknowledgements flow, and aiomqtt queues whatever arrives.  Once ``max_intake``
messages are taken and not yet stored, the source stops reading the socket (``ReadGate``);
TCP pushes back to the broker, which holds the session's messages (its
``max_queued_messages`` must allow for that; see the README's broker settings), and reading
resumes below half of it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

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
    # messages taken from the broker and not yet stored; reading pauses above it
    max_intake: int = 2000
    # MQTT v5 shared subscription: processes of one group split the stream ("" subscribes
    # the plain filter, and every process receives every message)
    share_group: str = "riskmon"

    @property
    def subscription(self) -> str:
        return f"$share/{self.share_group}/{self.topic}" if self.share_group else self.topic


class ReadGate:
    """Pauses and resumes reading an event loop's socket (the loop's registered reader).

    aiomqtt registers its own reader callback on the paho socket; the gate takes that
    registration out of the loop and puts the same one back.  On a loop whose readers it
    cannot see (not a selector loop) it does nothing and says so once."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fileno: int) -> None:
        self.loop, self.fileno = loop, fileno
        # the reader's callback and arguments while paused (removing a reader cancels its
        # handle, which forgets them)
        self.paused: tuple[Callable[..., object], tuple[object, ...]] | None = None

    def pause(self) -> bool:
        selector = getattr(self.loop, "_selector", None)
        try:
            key = selector.get_key(self.fileno) if selector is not None else None
        except (KeyError, ValueError):
            key = None
        reader = key.data[0] if key is not None else None
        if reader is None or self.paused is not None:
            if reader is None:
                log.warning("MQTT intake cannot be paused on this event loop; it is unbounded")
            return False
        self.paused = (reader._callback, reader._args)
        self.loop.remove_reader(self.fileno)
        return True

    def resume(self) -> None:
        paused, self.paused = self.paused, None
        if paused is not None:
            callback, args = paused
            self.loop.add_reader(self.fileno, callback, *args)


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
        self.intake = 0  # taken from the broker, not yet stored
        self.pauses = 0
        self._gate: ReadGate | None = None
        self._client: aiomqtt.Client | None = None

    def held(self) -> int:
        """Messages riskmon holds from the broker: taken and not yet stored, plus those the
        MQTT client has read and not yet handed over (the figure the gate bounds)."""
        queued = self._client._queue.qsize() if self._client is not None else 0
        return self.intake + queued

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
        self._client = client
        handover = paho.on_message  # aiomqtt's: queues the message for client.messages
        assert handover is not None

        def on_message(*args: Any) -> None:
            """Every message read from the socket: past the bound, stop reading."""
            handover(*args)
            gate = self._gate
            if gate is not None and self.held() >= c.max_intake and gate.pause():
                self.pauses += 1

        paho.on_message = on_message
        async with client:
            self._generation += 1
            generation = self._generation
            log.info("MQTT connected to %s:%s, subscribing %s", c.host, c.port, c.subscription)
            if c.share_group:
                # a persistent session from before may hold the plain filter: drop it, or
                # every message would come twice
                await client.unsubscribe(c.topic)
            await client.subscribe(c.subscription, qos=1)
            self._set_connected(True)  # ready: subscribed
            self.intake, self._gate = 0, None
            sock = paho.socket()
            if sock is not None:
                self._gate = ReadGate(asyncio.get_running_loop(), sock.fileno())
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
                    if generation != self._generation:
                        return
                    self.intake -= 1
                    if self._gate is not None and self.held() <= c.max_intake // 2:
                        self._gate.resume()
                    if qos and self.connected:
                        paho.ack(mid, qos)

                self.intake += 1

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
