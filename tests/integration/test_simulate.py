"""``riskmon simulate`` over each transport into a running riskmon: a scenario over HTTP
(its alerts appear), load mode over MQTT and over Kafka (every reading stored), with progress
shown while it runs."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from monitor.config import Settings
from monitor.evaluation.scenarios import SCENARIOS_DIR
from monitor.testing import TEST_ADMIN_TOKEN, running_service
from tests.integration.helpers import wait_for
from tests.integration.test_kafka import kafka_settings

pytestmark = pytest.mark.integration


async def _simulate(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor.cli", "simulate", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode == 0, err.decode()
    return out.decode() + err.decode()


async def _stored(svc, sql: str) -> int:  # type: ignore[no-untyped-def]
    async with svc.runtime.db.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def test_scenario_over_http_raises_its_alerts(settings: Settings, tmp_path: Path) -> None:
    scenario = SCENARIOS_DIR / "city_gas_leak_and_biogas.yaml"
    config = tmp_path / "config.yaml"
    from simulators.scenario import Scenario

    config.write_text(yaml.safe_dump(Scenario.load(scenario).config()))
    cfg = settings.model_copy(update={"mqtt_url": "", "config": config})
    async with running_service(cfg) as svc:
        out = await _simulate(
            "--scenario", str(scenario), "--speed", "0", "--transport", "http",
            "--http", svc.base_url, "--token", TEST_ADMIN_TOKEN,
        )  # fmt: skip
        assert "100.0 %" in out and "readings over http" in out
        rules = await _stored(
            svc,
            "SELECT count(DISTINCT rule) FROM alerts WHERE rule IN"
            " ('methane_well.high', 'pipe_pressure.drop')",
        )
        assert rules == 2


async def test_load_mode_over_mqtt_and_kafka(
    settings: Settings,
    mqtt_port: int,
    kafka_bootstrap: str,
    kafka_topics: tuple[str, str],
    tmp_path: Path,
) -> None:
    config = tmp_path / "load.yaml"
    await _simulate(
        "--load", "--sensors", "300", "--sites", "10", "--write-config", str(config)
    )  # fmt: skip
    cfg = kafka_settings(settings, kafka_bootstrap, kafka_topics, config=config)
    async with running_service(cfg) as svc:
        common = ["--load", "--sensors", "300", "--sites", "10", "--rate", "1500"]
        out = await _simulate(
            *common, "--batch", "1", "--duration", "2", "--transport", "mqtt",
            "--mqtt", f"mqtt://127.0.0.1:{mqtt_port}",
        )  # fmt: skip
        sent_mqtt = int(out.split("sent ")[1].split()[0])
        assert sent_mqtt > 1000
        await wait_for(lambda: _count(svc, sent_mqtt), timeout=30)
        out = await _simulate(
            *common, "--batch", "20", "--duration", "2", "--transport", "kafka",
            "--kafka", kafka_bootstrap, "--topic", kafka_topics[0],
        )  # fmt: skip
        sent_kafka = int(out.split("sent ")[1].split()[0])
        await wait_for(lambda: _count(svc, sent_mqtt + sent_kafka), timeout=30)


async def _count(svc, expected: int) -> bool:  # type: ignore[no-untyped-def]
    return await _stored(svc, "SELECT count(*) FROM readings") >= expected
