"""MQTT over TLS against a real Mosquitto with a TLS listener.

The test makes a certificate authority, a server certificate for 127.0.0.1 and an unrelated
second authority (with the ``cryptography`` package), starts its own Mosquitto with a TLS
listener, and checks that riskmon connects with CA verification and stores a reading sent
over TLS, and refuses the broker when given the wrong authority.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from monitor.config import Settings
from monitor.devservices import free_port, mosquitto_binary, port_open
from monitor.testing import running_service
from tests.integration.helpers import now, wait_for

pytestmark = pytest.mark.integration


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def authority(common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def server_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def write(
    path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None = None
) -> None:
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


@pytest.fixture(scope="module")
def tls_broker() -> Iterator[tuple[int, Path]]:
    """A private Mosquitto with only a TLS listener; yields its port and the certificates."""
    binary = mosquitto_binary()
    if binary is None:
        pytest.skip("mosquitto is not installed")
    with tempfile.TemporaryDirectory(prefix="riskmon-tls-") as tmp:
        d = Path(tmp)
        ca_key, ca = authority("riskmon test CA")
        key, cert = server_cert(ca_key, ca)
        write(d / "ca", ca)
        write(d / "server", cert, key)
        _, other = authority("some other CA")
        write(d / "other", other)
        # Mosquitto started as root drops to its own user, which must read these
        d.chmod(0o755)
        for f in d.iterdir():
            f.chmod(0o644)
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
