"""The real Prometheus server (Debian package) scrapes a running riskmon: the target is up,
riskmon's metrics and every pipeline-health dashboard query answer, and the alert rules load.
promtool checks the configuration and runs the rules' unit tests."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
import yaml

from monitor import devservices
from monitor.config import Settings
from monitor.testing import running_service

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed"),
]
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_promtool_checks_config_and_rules() -> None:
    prom = DEPLOY / "prometheus"
    for args in (
        ["check", "rules", "riskmon-rules.yml"],
        ["check", "config", "prometheus.yml"],
        ["test", "rules", "riskmon-rules.test.yml"],
    ):
        done = subprocess.run(["promtool", *args], cwd=prom, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


async def test_prometheus_scrapes_riskmon(settings: Settings) -> None:
    quiet = settings.model_copy(update={"mqtt_url": ""})
    async with running_service(quiet) as svc, svc.client() as api:
        await api.post("/api/v1/readings", json={"sensor": "gas-1", "ts": time.time(), "value": 1})
        target = svc.base_url.removeprefix("http://")
        with tempfile.TemporaryDirectory() as tmp:
            config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
            config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
            config["rule_files"] = [str(DEPLOY / "prometheus/riskmon-rules.yml")]
            config["scrape_configs"][0]["static_configs"] = [{"targets": [target]}]
            (Path(tmp) / "prometheus.yml").write_text(yaml.safe_dump(config))
            port = devservices.free_port()
            proc = await asyncio.create_subprocess_exec(
                "prometheus",
                f"--config.file={tmp}/prometheus.yml",
                f"--storage.tsdb.path={tmp}/data",
                f"--web.listen-address=127.0.0.1:{port}",
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                await _check(f"http://127.0.0.1:{port}")
            finally:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 10)


async def _check(prom: str) -> None:
    async with httpx.AsyncClient(base_url=prom, timeout=5) as client:
        deadline = time.monotonic() + 30
        while True:
            try:
                targets = (await client.get("/api/v1/targets")).json()["data"]["activeTargets"]
                if targets and targets[0]["health"] == "up":
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the riskmon target never came up"
            await asyncio.sleep(0.25)
        assert targets[0]["labels"]["job"] == "riskmon"

        async def query(expr: str) -> list[dict]:
            body = (await client.get("/api/v1/query", params={"query": expr})).json()
            assert body["status"] == "success", (expr, body)
            return body["data"]["result"]

        accepted = await query('riskmon_ingest_readings_accepted_total{source="http"}')
        assert accepted and float(accepted[0]["value"][1]) >= 1
        board = json.loads((DEPLOY / "grafana/dashboards/pipeline-health.json").read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                await query(target["expr"])
        groups = (await client.get("/api/v1/rules")).json()["data"]["groups"]
        names = {rule["name"] for group in groups for rule in group["rules"]}
        assert {
            "RiskmonIngestStalled",
            "RiskmonRejectRatioHigh",
            "RiskmonStoreFlushSlow",
            "RiskmonConsumerLagGrowing",
        } <= names
        assert all(r["health"] != "err" for g in groups for r in g["rules"])
