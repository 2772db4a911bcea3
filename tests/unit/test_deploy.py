"""The deployment files stay coherent (no Docker engine on the test machines)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from monitor.config import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_compose_has_the_services_and_roles() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {
        "timescaledb", "mosquitto", "kafka", "gateway", "processor", "simulator", "prometheus",
        "grafana",
    } <= set(services)  # fmt: skip
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


def test_mounted_files_exist_and_targets_are_services() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), volume
            else:
                assert source in compose["volumes"], volume
        for dep in service.get("depends_on", {}):
            assert dep in services
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    for target in prom["scrape_configs"][0]["static_configs"][0]["targets"]:
        assert target.split(":")[0] in services
    grafana_env = services["grafana"]["environment"]
    source = (DEPLOY / "grafana/provisioning/datasources/riskmon.yml").read_text()
    for name in grafana_env:
        if name.startswith("RISKMON_"):
            assert name in source, name


def test_every_setting_is_in_the_example_config_and_the_readme() -> None:
    example = (DEPLOY / "config" / "riskmon.example.env").read_text()
    readme = (DEPLOY.parent / "README.md").read_text()
    for name in Settings.model_fields:
        setting = f"RISKMON_{name.upper()}"
        assert f"# {setting}=" in example, setting
        assert f"`{setting}`" in readme, setting


def test_grafana_provisioning_uses_only_syntax_grafana_expands() -> None:
    """Grafana expands $VAR and ${VAR} in provisioning, with no ${VAR:-default}: every
    variable named there must be set in the Grafana container's environment."""
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    grafana_env = compose["services"]["grafana"]["environment"]
    for path in (DEPLOY / "grafana" / "provisioning").rglob("*.yml"):
        source = "\n".join(
            line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")
        )
        assert ":-" not in source, path
        for name in re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", source):
            assert grafana_env.get(name), (path, name)


def test_dashboards_colour_levels_by_value_mappings() -> None:
    colours = {"1": "red", "2": "orange", "3": "yellow", "4": "blue"}
    checked = 0
    for path in (DEPLOY / "grafana" / "dashboards").glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            sql = " ".join(t.get("rawSql") or "" for t in panel.get("targets", []))
            if panel["type"] not in ("table", "geomap") or not re.search(r"\blevel\b", sql):
                continue
            overrides = panel["fieldConfig"]["overrides"]
            (level,) = [o for o in overrides if o["matcher"]["options"] == "level"]
            (mappings,) = [p["value"] for p in level["properties"] if p["id"] == "mappings"]
            options = mappings[0]["options"]
            assert {k: options[k]["color"] for k in colours} == colours, panel["title"]
            checked += 1
    assert checked >= 5
