"""Two processor processes in one consumer group, one killed with SIGKILL mid-stream: every
valid reading is stored exactly once and the alerts equal those of a single-process run."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from monitor.devservices import create_topics, delete_topics, free_port
from monitor.testing import temporary_database
from tests.integration.helpers import wait_for
from tests.integration.kafka_helpers import produce
from tests.integration.probe import (
    City,
    alert_set,
    event_set,
    kafka_env,
    migrate,
    scalar,
    start,
    stop,
    write_config,
)

pytestmark = pytest.mark.integration
CITY = City(sites=100, per_site=10, readings=100, per_message=50)


async def test_two_processors_one_killed_store_exactly_once(
    pg_server: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    config = tmp_path / "city.yaml"
    write_config(config, CITY.sites, CITY.per_site)
    records = CITY.stream()
    total = CITY.total
    assert total >= 100_000 and sum(len(v) for _, v in records) == total
    topic = f"riskmon.readings.{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_bootstrap, {topic: 6, f"{topic}.dlq": 1})
    try:
        async with temporary_database(pg_server) as db, temporary_database(pg_server) as ref:
            environ = kafka_env(db, kafka_bootstrap, topic, f"g-{topic}", config)
            for database in (db, ref):  # migrate first, so processes start together
                await migrate(kafka_env(database, kafka_bootstrap, topic, "-", config))
            a = await start(environ)
            b = await start({**environ, "RISKMON_HTTP_PORT": str(free_port())})
            try:
                half = len(records) // 2
                await produce(kafka_bootstrap, topic, records[:half])

                async def stored_some() -> bool:
                    return int(await scalar(db, "SELECT count(*) FROM readings")) > total // 4

                await wait_for(stored_some, timeout=60, interval=0.2)
                a.kill()  # SIGKILL mid-stream
                await a.wait()
                await produce(kafka_bootstrap, topic, records[half:])

                async def all_stored() -> bool:
                    return int(await scalar(db, "SELECT count(*) FROM readings")) >= total

                await wait_for(all_stored, timeout=120, interval=0.5)
                await asyncio.sleep(2)  # let the survivor finish its last alert writes
            finally:
                await stop(b)
                if a.returncode is None:
                    a.kill()
                    await a.wait()
            assert await scalar(db, "SELECT count(*) FROM readings") == total
            assert (
                await scalar(
                    db, "SELECT count(*) FROM (SELECT DISTINCT sensor_key, ts FROM readings) x"
                )
                == total
            )

            # the same input through one process, from the beginning, in another database
            single = await start(kafka_env(ref, kafka_bootstrap, topic, f"ref-{topic}", config))
            try:

                async def ref_done() -> bool:
                    return int(await scalar(ref, "SELECT count(*) FROM readings")) >= total

                await wait_for(ref_done, timeout=120, interval=0.5)
                await asyncio.sleep(2)
            finally:
                await stop(single)
            two, one = await alert_set(db), await alert_set(ref)
            assert len(one) > 50
            assert two == one
            events_two, events_one = await event_set(db), await event_set(ref)
            extra = sorted(events_two - events_one, key=str)
            missing = sorted(events_one - events_two, key=str)
            rules = {a[0]: (a[1], a[2]) for a in two}
            if extra or missing:
                first = (extra or missing)[0][0]
                hist_two = sorted((e[3], e[1], e[2]) for e in events_two if e[0] == first)
                hist_one = sorted((e[3], e[1], e[2]) for e in events_one if e[0] == first)
                print("TWO", rules.get(first), [(t.second, k, lv) for t, k, lv in hist_two])
                print("ONE", rules.get(first), [(t.second, k, lv) for t, k, lv in hist_one])
            assert not extra and not missing, (
                [(rules.get(e[0]), e[1:]) for e in extra[:5]],
                [(rules.get(e[0]), e[1:]) for e in missing[:5]],
            )
    finally:
        await delete_topics(kafka_bootstrap, [topic, f"{topic}.dlq"])
