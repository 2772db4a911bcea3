"""The deployment files stay coherent (no Docker engine on the test machines)."""

from __future__ import annotations

from pathlib import Path

import yaml

from monitor.config import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_compose_has_the_services_and_roles() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"timescaledb", "mosquitto", "kafka", "gateway", "processor", "simulator"} <= set(
        services
    )
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["gateway"]["command"][-1] == "gateway"
    assert services["processor"]["command"][-1] == "processor"
    for name in ("gateway", "processor"):
        env_file = DEPLOY / services[name]["env_file"]
        assert env_file.is_file()


def test_env_file_names_only_real_settings() -> None:
    known = {f"RISKMON_{name.upper()}" for name in Settings.model_fields}
    for line in (DEPLOY / "config" / "riskmon.env").read_text().splitlines():
        if line and not line.startswith("#"):
            assert line.split("=", 1)[0] in known, line


def test_dockerfile_runs_as_non_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "\nUSER riskmon" in text and "useradd" in text
