"""MQTT over TLS against a real Mosquitto with a TLS listener.

The test makes a certificate authority, a server certificate for 127.0.0.1 and an unrelated
second authority (with the ``cryptography`` package), starts its own Mosquitto with a TLS
listener, and checks that riskmon connects with CA verification and stores a reading sent
over TLS, and refuses the broker when given the wrong authority.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import orjson
import pytest

from monitor.config import Settings
from monitor.devservices import free_port, mosquitto_binary, port_open
from monitor.testing import running_service
from tests.integration.certs import make_certs
from tests.integration.helpers import now, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_broker() -> Iterator[tuple[int, Path]]:
    """A private Mosquitto with only a TLS listener; yields its port and the certificates."""
    binary = mosquitto_binary()
    if binary is None:
        pytest.skip("mosquitto is not installed")
    with tempfile.TemporaryDirectory(prefix="riskmon-tls-") as tmp:
        d = make_certs(Path(tmp))  # Mosquitto started as root drops to its own user
        port = free_port()
        (d / "mosquitto.conf").write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"cafile {d / 'ca.pem'}\ncertfile {d / 'server.pem'}\nkeyfile {d / 'server.key'}\n"
        )
        proc = subprocess.Popen(
            [binary, "-c", str(d / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while not port_open("127.0.0.1", port):
                assert proc.poll() is None and time.monotonic() < deadline, "no TLS broker"
                time.sleep(0.05)
            yield port, d
        finally:
            proc.terminate()
            proc.wait(5)


async def test_mqtt_over_tls_with_ca_verification(
    settings: Settings, tls_broker: tuple[int, Path]
) -> None:
    port, certs = tls_broker
    cfg = settings.model_copy(
        update={"mqtt_url": f"mqtts://127.0.0.1:{port}", "mqtt_ca_file": certs / "ca.pem"}
    )
    async with running_service(cfg) as svc, svc.client() as api:
        assert svc.runtime.mqtt is not None and svc.runtime.mqtt.connected
        context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        t = now()
        async with aiomqtt.Client("127.0.0.1", port, tls_context=context) as device:
            body = {"sensor": "gas-1", "ts": t, "value": 30}
            await device.publish("riskmon/v1/t1/s1/readings", orjson.dumps(body), qos=1)

        async def raised() -> bool:
            return bool((await api.get("/api/v1/alerts", params={"state": "open"})).json())

        await wait_for(raised)


async def test_a_broker_signed_by_another_ca_is_refused(
    settings: Settings, tls_broker: tuple[int, Path]
) -> None:
    port, certs = tls_broker
    cfg = settings.model_copy(
        update={"mqtt_url": f"mqtts://127.0.0.1:{port}", "mqtt_ca_file": certs / "other.pem"}
    )
    async with running_service(cfg) as svc, svc.client() as api:
        await asyncio.sleep(1.5)
        assert svc.runtime.mqtt is not None and not svc.runtime.mqtt.connected
        ready = await api.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["mqtt"] == "disconnected"
