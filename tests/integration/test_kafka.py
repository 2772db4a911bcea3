"""Kafka ingestion, dead letters, gateway and processor roles (issue 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from monitor.config import Settings
from monitor.devservices import free_port
from monitor.handover import partition_of
from monitor.testing import running_service
from tests.integration.helpers import alerts, now, publish, wait_for
from tests.integration.kafka_helpers import produce, read_all

pytestmark = pytest.mark.integration


def kafka_settings(
    settings: Settings, bootstrap: str, topics: tuple[str, str], **extra: Any
) -> Settings:
    return settings.model_copy(
        update={
            "kafka_bootstrap_servers": bootstrap,
            "kafka_topic": topics[0],
            "kafka_dlq_topic": topics[1],
            "kafka_group_id": f"g-{topics[0]}",
            **extra,
        }
    )


async def count(svc: Any, sql: str) -> int:
    async with svc.runtime.db.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def test_kafka_source_alerts_and_dead_letters(
    settings: Settings, kafka_bootstrap: str, kafka_topics: tuple[str, str]
) -> None:
    cfg = kafka_settings(settings, kafka_bootstrap, kafka_topics, mqtt_url="")
    async with running_service(cfg) as svc, svc.client() as api:
        t = now()
        await produce(
            kafka_bootstrap,
            kafka_topics[0],
            [
                ("s1", [{"sensor": "gas-1", "ts": t, "value": 55}]),
                (
                    "s2",
                    [
                        {"sensor": "ch4-1", "ts": t, "value": "high"},
                        {"sensor": "ch4-1", "ts": t + 1, "value": 25},
                    ],
                ),
                ("s1", {"sensor": "ch4-1", "ts": t, "value": 1}),
            ],
        )
        await produce(
            kafka_bootstrap, kafka_topics[0], [("s1", b'{"sensor": "gas-1", "ts": ')], raw=True
        )
        await produce(
            kafka_bootstrap,
            kafka_topics[0],
            [("s1", {"sensor": "gas-2", "ts": t + 2, "value": 12})],
        )
        found = await wait_for(lambda: _alerts_for(api, {"gas-1", "ch4-1", "gas-2"}), timeout=20)
        assert {(a["sensor"], a["level"]) for a in found} == {
            ("gas-1", 2),
            ("ch4-1", 2),
            ("gas-2", 4),
        }
        dead = await read_all(kafka_bootstrap, kafka_topics[1], expect=3)
        reasons = sorted(dict(r.headers)["reason"].decode() for r in dead)
        assert reasons == ["malformed_json", "value_not_number", "wrong_site"]
        rejects = (await api.get("/api/v1/rejects")).json()
        assert sorted(r["reason"] for r in rejects if r["source"] == "kafka") == reasons
        metrics = (await api.get("/metrics")).text
        assert "riskmon_kafka_dead_letters_total" in metrics
        assert "riskmon_kafka_commits_total" in metrics
        assert "riskmon_kafka_consumer_lag_messages" in metrics


async def _alerts_for(api: httpx.AsyncClient, sensors: set[str]) -> list[dict[str, Any]]:
    rows = [a for a in await alerts(api) if a["sensor"] in sensors]
    return rows if {a["sensor"] for a in rows} == sensors else []


async def test_gateway_refuses_input_while_kafka_is_unreachable(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    cfg = settings.model_copy(update={"role": "gateway", "kafka_bootstrap_servers": dead})
    async with running_service(cfg) as svc, svc.client() as api:
        ready = await api.get("/readyz")
        assert ready.status_code == 503
        assert "unreachable" in ready.json()["checks"]["kafka"]
        r = await api.post("/api/v1/readings", json={"sensor": "gas-1", "ts": now(), "value": 1})
        assert r.status_code == 503 and "refused" in r.json()["detail"]
        assert svc.runtime.mqtt is not None and not svc.runtime.mqtt.connected
    assert any("input is refused" in rec.getMessage() for rec in caplog.records)


async def test_gateway_to_processor_through_kafka(
    settings: Settings, kafka_bootstrap: str, kafka_topics: tuple[str, str], mqtt_port: int
) -> None:
    gw = kafka_settings(settings, kafka_bootstrap, kafka_topics, role="gateway")
    proc = kafka_settings(settings, kafka_bootstrap, kafka_topics, role="processor", mqtt_url="")
    async with (
        running_service(proc) as p,
        running_service(gw) as g,
        p.client() as papi,
        g.client() as gapi,
    ):
        await wait_for(lambda: _ready(gapi), timeout=15)
        t = now()
        await publish(
            mqtt_port, "riskmon/v1/t1/s1/readings", [{"sensor": "gas-1", "ts": t, "value": 30}]
        )
        r = await gapi.post(
            "/api/v1/readings",
            json=[
                {"sensor": "ch4-1", "ts": t, "value": 21},
                {"sensor": "lvl-1", "ts": t, "value": 96},
                {"sensor": "nobody", "ts": t, "value": 1},
            ],
        )
        assert r.status_code == 200 and r.json()["forwarded"] == 3
        found = await wait_for(lambda: _alerts_for(papi, {"gas-1", "ch4-1", "lvl-1"}), timeout=20)
        assert {(a["sensor"], a["level"]) for a in found} == {
            ("gas-1", 3),
            ("ch4-1", 2),
            ("lvl-1", 2),
        }
        rejects = await wait_for(lambda: _json(papi, "/api/v1/rejects"), timeout=10)
        assert [x["reason"] for x in rejects] == ["unknown_sensor"]
        assert (await papi.post("/api/v1/readings", json=[])).status_code == 409


async def _ready(api: httpx.AsyncClient) -> bool:
    return (await api.get("/readyz")).status_code == 200


async def _json(api: httpx.AsyncClient, path: str) -> Any:
    return (await api.get(path)).json()


def test_partition_of_matches_the_producer() -> None:
    # aiokafka's default partitioner (murmur2, as the Java client): values seen on the broker
    assert [partition_of(f"site-{i}", 4) for i in (0, 5, 4, 7, 2, 3, 1)] == [0, 0, 1, 1, 3, 3, 2]


async def test_on_delay_spans_a_processor_restart(
    settings: Settings, kafka_bootstrap: str, kafka_topics: tuple[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "ondelay.yaml"
    config.write_text(
        "sites: [{id: d1, name: d1, tenant: t, kind: tailings_dam}]\n"
        "sensors: [{id: fb-1, site: d1, kind: freeboard, unit: m, expected_interval_s: 100000}]\n"
        "rules:\n  - {id: fb.low, type: threshold, selector: {kind: freeboard},"
        " direction: low, levels: {2: 1.1}, on_delay_s: 60}\n"
    )
    cfg = kafka_settings(
        settings,
        kafka_bootstrap,
        kafka_topics,
        role="processor",
        mqtt_url="",
        config=config,
        rule_packs=(),
    )
    t0 = 1_780_000_000.0
    first = [("d1", {"sensor": "fb-1", "ts": t0 + i, "value": 1.0}) for i in range(0, 31, 5)]
    second = [("d1", {"sensor": "fb-1", "ts": t0 + i, "value": 1.0}) for i in range(35, 91, 5)]
    async with running_service(cfg) as svc, svc.client() as api:
        await produce(kafka_bootstrap, kafka_topics[0], first)
        await wait_for(lambda: _stored(svc, len(first)), timeout=20)
        assert await alerts(api) == []  # pending: 30 s of 60 held
    async with running_service(cfg) as svc, svc.client() as api:
        await produce(kafka_bootstrap, kafka_topics[0], second)
        found = await wait_for(lambda: alerts(api), timeout=20)
        assert len(found) == 1 and found[0]["level"] == 2
        # on time: the timer started at t0, before the restart (a lost timer gives t0 + 95)
        opened = found[0]["opened_at"]
        assert opened.startswith("2026-05-28T20:27:40"), opened


async def _stored(svc: Any, n: int) -> bool:
    return await count(svc, "SELECT count(*) FROM readings") >= n


async def test_source_pauses_under_backpressure_and_loses_nothing(
    settings: Settings, kafka_bootstrap: str, kafka_topics: tuple[str, str]
) -> None:
    cfg = kafka_settings(
        settings,
        kafka_bootstrap,
        kafka_topics,
        mqtt_url="",
        kafka_pause_at=20,
        kafka_resume_at=5,
        batch_max_readings=50,
    )
    t = 1_790_000_000.0
    records = [("s1", {"sensor": "gas-1", "ts": t + i, "value": 1.0}) for i in range(3000)]
    async with running_service(cfg) as svc, svc.client() as api:
        await produce(kafka_bootstrap, kafka_topics[0], records)
        await wait_for(lambda: _stored(svc, len(records)), timeout=60, interval=0.2)
        metrics = (await api.get("/metrics")).text
        pauses = [
            line for line in metrics.splitlines() if line.startswith("riskmon_kafka_pauses_total")
        ]
        assert pauses and float(pauses[0].split()[-1]) >= 1
        assert await count(svc, "SELECT count(*) FROM readings") == len(records)
