"""The outside fault probe, as a test: riskmon SIGKILLed again and again mid-stream, and the
broker restarted under it.  Every reading is stored exactly once, and the alerts and their
events equal those of a clean run of the same stream into another database.

A rule of every per-sensor type runs on the wells (threshold, count, leak with temperature,
rate by end points and by regression, window sum and max, spike, drift, flatline, anomaly).

- MQTT, single node: QoS 1, persistent session; riskmon is killed at several points of the
  stream and started again, so batches whose PUBACKs were lost are redelivered (the probe's 3
  of 10 runs with a second alert for one episode).
- Kafka processor: killed several times while it consumes (the probe's 352 alerts against 349).
- MQTT broker: a persistent Mosquitto stopped (SIGTERM) and started again mid-stream; the
  publisher resends what was not acknowledged and riskmon reconnects (with the plain filter:
  Mosquitto does not restore shared subscriptions, see README "Deployment").

``PROBE_KILLS`` (default 3) sets how many times; docs/benchmarks.md has a run with 10.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest

from monitor.devservices import create_topics, delete_topics, spawn_mosquitto
from monitor.testing import temporary_database
from tests.integration.helpers import wait_for
from tests.integration.kafka_helpers import produce
from tests.integration.probe import (
    City,
    alert_set,
    differences,
    distinct_stored,
    env,
    event_set,
    kafka_env,
    migrate,
    restart,
    start,
    stop,
    stored,
    subscribed,
    write_config,
)

pytestmark = pytest.mark.integration
KILLS = int(os.environ.get("PROBE_KILLS", "3"))
CITY = City(sites=20, per_site=10, readings=100, per_message=50, temperature=True)  # 22,000


def mqtt_env(db: str, config: Path, port: int, name: str) -> dict[str, str]:
    return env(
        db,
        config,
        mqtt_url=f"mqtt://127.0.0.1:{port}",
        mqtt_client_id=f"riskmon-{name}",
        mqtt_share_group=name,
        batch_linger_ms="20",
    )


async def publish_paced(port: int, records: list[tuple[str, Any]], seconds: float) -> None:
    """QoS 1 over ``seconds``, as a fleet of gateways would; on a broker restart, reconnect and
    resend what was not acknowledged (a device resends: duplicates are riskmon's problem)."""
    pause = seconds / len(records)
    i = 0
    while i < len(records):
        try:
            async with aiomqtt.Client(
                "127.0.0.1", port, identifier=f"pub-{uuid.uuid4().hex[:6]}"
            ) as c:
                while i < len(records):
                    site, batch = records[i]
                    topic = f"riskmon/v1/city/{site}/readings"
                    await c.publish(topic, orjson.dumps(batch), qos=1)
                    i += 1
                    await asyncio.sleep(pause)
        except aiomqtt.MqttError:
            await asyncio.sleep(0.3)


async def produce_paced(
    bootstrap: str, topic: str, records: list[Any], seconds: float = 12
) -> None:
    """The stream over ``seconds``, as sites report: the processor snapshots meanwhile (and
    at once, at their first offset, the partitions it finds without a snapshot)."""
    step = max(1, len(records) // 40)
    for i in range(0, len(records), step):
        await produce(bootstrap, topic, records[i : i + step])
        await asyncio.sleep(seconds / 40)


async def kill_at(db: str, proc: asyncio.subprocess.Process, fraction: float) -> None:
    async def far_enough() -> bool:
        return await stored(db) >= fraction * CITY.total

    await wait_for(far_enough, timeout=120, interval=0.05)
    proc.kill()  # SIGKILL: no drain, no goodbye
    await proc.wait()


async def all_stored(db: str, timeout: float = 180) -> None:
    async def done() -> bool:
        return await stored(db) >= CITY.total

    try:
        await wait_for(done, timeout=timeout, interval=0.25)
    except AssertionError as e:  # how far it got
        raise AssertionError(f"{await stored(db)} of {CITY.total} readings stored") from e
    await asyncio.sleep(2)  # the last batch's alert writes


async def same_as_clean(db: str, ref: str) -> None:
    assert await stored(db) == await distinct_stored(db) == CITY.total  # exactly once
    got, want = await alert_set(db), await alert_set(ref)
    assert len(want) > 20
    assert got == want, differences(got, want) + " | " + str(sorted(want - got, key=str)[:3])
    got_events, want_events = await event_set(db), await event_set(ref)
    assert got_events == want_events, differences(got_events, want_events)


@contextlib.contextmanager
def city_config(tmp_path: Path) -> Iterator[Path]:
    config = tmp_path / "city.yaml"
    write_config(config, CITY.sites, CITY.per_site, every_type=True)
    yield config


async def clean_run_mqtt(ref: str, config: Path, port: int, records: list[Any]) -> None:
    environ = mqtt_env(ref, config, port, f"ref{uuid.uuid4().hex[:6]}")
    proc = await start(environ, role="all")
    try:
        await subscribed(environ)
        await publish_paced(port, records, 2)
        await all_stored(ref)
    finally:
        await stop(proc)


async def test_mqtt_single_node_killed_again_and_again(pg_server: str, tmp_path: Path) -> None:
    records = CITY.stream()
    with city_config(tmp_path) as config, spawn_mosquitto() as port:
        async with temporary_database(pg_server) as db, temporary_database(pg_server) as ref:
            name = f"kill{uuid.uuid4().hex[:6]}"
            environ = mqtt_env(db, config, port, name)
            await migrate(environ)
            proc = await start(environ, role="all")
            try:
                await subscribed(environ)  # the persistent session and its subscription exist
                publisher = asyncio.create_task(publish_paced(port, records, 12))
                for k in range(KILLS):
                    await kill_at(db, proc, (k + 1) / (KILLS + 2))
                    proc = await restart(environ, role="all")
                await publisher
                await all_stored(db)
            finally:
                await stop(proc)
            await migrate(mqtt_env(ref, config, port, "-"))
            await clean_run_mqtt(ref, config, port, records)
            await same_as_clean(db, ref)


async def test_kafka_processor_killed_again_and_again(
    pg_server: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    records = CITY.stream()
    topic = f"riskmon.readings.{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_bootstrap, {topic: 4, f"{topic}.dlq": 1})
    try:
        with city_config(tmp_path) as config:
            async with temporary_database(pg_server) as db, temporary_database(pg_server) as ref:
                environ = kafka_env(db, kafka_bootstrap, topic, f"g-{topic}", config)
                environ["RISKMON_KAFKA_PAUSE_AT"] = "200"  # small steps, so kills land mid-stream
                environ["RISKMON_KAFKA_RESUME_AT"] = "50"
                await migrate(environ)
                proc = await start(environ)
                try:
                    producer = asyncio.create_task(produce_paced(kafka_bootstrap, topic, records))
                    for k in range(KILLS):
                        await kill_at(db, proc, (k + 1) / (KILLS + 2))
                        proc = await restart(environ)
                    await producer
                    await all_stored(db)
                finally:
                    await stop(proc)
                clean = kafka_env(ref, kafka_bootstrap, topic, f"ref-{topic}", config)
                await migrate(clean)
                single = await start(clean)
                try:
                    await all_stored(ref)
                finally:
                    await stop(single)
                await same_as_clean(db, ref)
    finally:
        await delete_topics(kafka_bootstrap, [topic, f"{topic}.dlq"])


@pytest.mark.timeout(300)
async def test_mqtt_broker_restarted_mid_stream(pg_server: str, tmp_path: Path) -> None:
    records = CITY.stream()
    store = tmp_path / "broker"
    store.mkdir()
    with city_config(tmp_path) as config:
        async with temporary_database(pg_server) as db, temporary_database(pg_server) as ref:
            broker = contextlib.ExitStack()
            port = broker.enter_context(spawn_mosquitto(store=store))
            environ = mqtt_env(db, config, port, f"restart{uuid.uuid4().hex[:6]}")
            # the plain filter: Mosquitto 2.0 does not restore shared subscriptions after a
            # restart, and drops what is published before riskmon subscribes again (README)
            environ["RISKMON_MQTT_SHARE_GROUP"] = ""
            await migrate(environ)
            proc = await start(environ, role="all")
            try:
                await subscribed(environ)
                publisher = asyncio.create_task(publish_paced(port, records, 10))

                async def a_third() -> bool:
                    return await stored(db) >= CITY.total / 3

                await wait_for(a_third, timeout=60, interval=0.05)
                broker.close()  # SIGTERM: Mosquitto saves sessions and queued messages
                await asyncio.sleep(1)
                broker.enter_context(spawn_mosquitto(port, store=store))
                await publisher
                await all_stored(db)
                assert proc.returncode is None  # it lived through the restart
            finally:
                await stop(proc)
                broker.close()
            with spawn_mosquitto() as clean_port:
                await migrate(mqtt_env(ref, config, clean_port, "-"))
                await clean_run_mqtt(ref, config, clean_port, records)
            await same_as_clean(db, ref)
