"""Shared fixtures.  Integration tests use the real services: PostgreSQL (the local server, or
an embedded one when none answers) and a private Mosquitto started on a free port."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from monitor import devservices
from monitor.config import Settings
from monitor.testing import temporary_database


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    with (
        tempfile.TemporaryDirectory(prefix="riskmon-pg-") as tmp,
        devservices.postgres(Path(tmp)) as url,
    ):
        yield url


@pytest.fixture(scope="session")
def mqtt_port() -> Iterator[int]:
    with devservices.spawn_mosquitto() as port:
        yield port


@pytest.fixture
async def database_url(pg_server: str) -> AsyncIterator[str]:
    async with temporary_database(pg_server) as url:
        yield url


@pytest.fixture
def settings(database_url: str, mqtt_port: int, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        mqtt_url=f"mqtt://127.0.0.1:{mqtt_port}",
        mqtt_client_id=f"riskmon-test-{tmp_path.name}",
        # a share group per test: earlier tests' persistent sessions in one group would each
        # be handed a share of this test's messages (MQTT v5 shared subscriptions)
        mqtt_share_group=f"t-{tmp_path.name}",
        config=Path(__file__).parent / "data" / "spine.yaml",
        batch_linger_ms=5,
        tick_interval_s=0.2,
    )


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    with devservices.tansu() as bootstrap:
        yield bootstrap


@pytest.fixture
async def kafka_topics(kafka_bootstrap: str) -> AsyncIterator[tuple[str, str]]:
    """A fresh readings topic (4 partitions) and its DLQ; removed after the test."""
    import uuid

    readings = f"riskmon.readings.{uuid.uuid4().hex[:8]}"
    dlq = f"{readings}.dlq"
    await devservices.create_topics(kafka_bootstrap, {readings: 4, dlq: 1})
    try:
        yield readings, dlq
    finally:
        await devservices.delete_topics(kafka_bootstrap, [readings, dlq])
