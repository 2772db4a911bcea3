"""Kafka over TLS: riskmon's SSL settings against a TLS listener, with CA verification.

Tansu 0.6 (the only Kafka-protocol broker this machine can run) does not complete a TLS
handshake itself, so stunnel terminates TLS in front of it and Tansu advertises the TLS port:
every client connection, bootstrap and metadata alike, goes over TLS.  A gateway produces and a
processor consumes through it with ``RISKMON_KAFKA_SECURITY_PROTOCOL=SSL`` and
``RISKMON_KAFKA_SSL_CA_FILE``; a processor given an unrelated CA refuses the broker.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from monitor.config import Settings
from monitor.devservices import create_topics, delete_topics, free_port, tansu, tls_front
from monitor.testing import running_service
from tests.integration.certs import make_certs
from tests.integration.helpers import now, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_kafka() -> Iterator[tuple[str, Path]]:
    with tempfile.TemporaryDirectory(prefix="riskmon-ktls-") as tmp:
        certs = make_certs(Path(tmp))
        plain, secure = free_port(), free_port()
        with (
            tansu(plain, advertised=secure),
            tls_front(plain, certs / "server.pem", certs / "server.key", port=secure),
        ):
            yield f"127.0.0.1:{secure}", certs


@pytest.fixture
async def tls_topics(tls_kafka: tuple[str, Path]) -> AsyncIterator[tuple[str, str]]:
    bootstrap, certs = tls_kafka
    readings = f"riskmon.readings.tls{uuid.uuid4().hex[:6]}"
    # the admin client of the test talks TLS too: the broker's metadata names the TLS port
    await create_topics(bootstrap, {readings: 2, f"{readings}.dlq": 1}, ca_file=certs / "ca.pem")
    try:
        yield readings, f"{readings}.dlq"
    finally:
        await delete_topics(bootstrap, [readings, f"{readings}.dlq"], ca_file=certs / "ca.pem")


def over_tls(
    settings: Settings, bootstrap: str, ca: Path, topics: tuple[str, str], **extra: object
) -> Settings:
    return settings.model_copy(
        update={
            "kafka_bootstrap_servers": bootstrap,
            "kafka_security_protocol": "SSL",
            "kafka_ssl_ca_file": ca,
            "kafka_topic": topics[0],
            "kafka_dlq_topic": topics[1],
            "kafka_group_id": f"g-{topics[0]}",
            **extra,
        }
    )


async def test_gateway_and_processor_over_tls_with_ca_verification(
    settings: Settings, tls_kafka: tuple[str, Path], tls_topics: tuple[str, str]
) -> None:
    bootstrap, certs = tls_kafka
    gw = over_tls(settings, bootstrap, certs / "ca.pem", tls_topics, role="gateway", mqtt_url="")
    proc = over_tls(
        settings, bootstrap, certs / "ca.pem", tls_topics, role="processor", mqtt_url=""
    )
    async with (
        running_service(proc) as p,
        running_service(gw) as g,
        p.client() as papi,
        g.client() as gapi,
    ):
        await wait_for(lambda: _ready(gapi), timeout=15)
        t = now()
        readings = [
            {"sensor": "ch4-1", "ts": t, "value": 21},
            {"sensor": "gas-1", "ts": t, "value": 2},
        ]
        answer = await gapi.post("/api/v1/readings", json=readings)
        assert answer.status_code == 200 and answer.json()["forwarded"] == 2

        async def orange() -> list[dict[str, object]]:
            return [a for a in (await papi.get("/api/v1/alerts")).json() if a["sensor"] == "ch4-1"]

        [alert] = await wait_for(orange, timeout=20)
        assert alert["level"] == 2
        assert (await papi.get("/readyz")).json()["checks"]["kafka"] == "ok"


@pytest.mark.parametrize(
    ("ca", "protocol"), [("other.pem", "SSL"), (None, "PLAINTEXT")], ids=["wrong-ca", "plaintext"]
)
async def test_a_processor_refuses_a_broker_it_cannot_verify(
    settings: Settings,
    tls_kafka: tuple[str, Path],
    tls_topics: tuple[str, str],
    ca: str | None,
    protocol: str,
) -> None:
    """An unrelated CA is refused; plaintext gets nowhere on the TLS port (so the test above
    really went over TLS)."""
    bootstrap, certs = tls_kafka
    cfg = over_tls(settings, bootstrap, certs / "ca.pem", tls_topics, role="processor", mqtt_url="")
    cfg = cfg.model_copy(
        update={
            "kafka_ssl_ca_file": certs / ca if ca else None,
            "kafka_security_protocol": protocol,
        }
    )
    async with running_service(cfg) as svc, svc.client() as api:
        ready = (await api.get("/readyz")).json()
        assert ready["checks"]["kafka"] == "not connected", ready
        assert not ready["ready"]


async def _ready(api: httpx.AsyncClient) -> bool:
    return (await api.get("/readyz")).status_code == 200
