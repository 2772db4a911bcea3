"""Configuration that does what it says (against the real service and store).

- A rule in ``RISKMON_CONFIG`` with the id of a shipped pack rule replaces the pack default
  (it was silently ignored); a rule changed through the API since stays, and the conflict is
  logged in one line.
- ``PATCH /api/v1/rules/{id}`` changes the fields it names and keeps the others (``PUT``
  replaces the whole rule, so a README-style PUT reset ``deadband``).
- A selector that matches no sensor is accepted with a warning that names the closest kind.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from monitor.config import Settings
from monitor.testing import running_service

pytestmark = pytest.mark.integration
SPINE = Path(__file__).parents[1] / "data" / "spine.yaml"


def with_rule(tmp_path: Path) -> Path:
    doc = yaml.safe_load(SPINE.read_text())
    doc["rules"] = [
        {
            "id": "tank_level.high",
            "type": "threshold",
            "selector": {"kind": "tank_level"},
            "levels": {3: 85, 2: 95},
            "deadband": 1,
        }
    ]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


async def test_config_rules_win_over_packs_but_not_over_operators(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = settings.model_copy(update={"mqtt_url": "", "config": with_rule(tmp_path)})
    async with running_service(cfg) as svc, svc.client() as api:
        rule = (await api.get("/api/v1/rules/tank_level.high")).json()
        assert rule["levels"] == {"3": 85.0, "2": 95.0} and rule["deadband"] == 1.0
        assert rule["changes"][-1]["changed_by"] == "config"
        patched = await api.patch("/api/v1/rules/tank_level.high", json={"off_delay_s": 30})
        assert patched.status_code == 200
    caplog.set_level(logging.WARNING, logger="riskmon")
    async with running_service(cfg) as svc, svc.client() as api:
        rule = (await api.get("/api/v1/rules/tank_level.high")).json()
        assert rule["off_delay_s"] == 30.0  # the operator's change survived the restart
    conflict = [r.getMessage() for r in caplog.records if "RISKMON_CONFIG" in r.getMessage()]
    assert len(conflict) == 1 and "tank_level.high" in conflict[0]


async def test_patch_changes_only_what_it_names(settings: Settings) -> None:
    cfg = settings.model_copy(update={"mqtt_url": ""})
    async with running_service(cfg) as svc, svc.client() as api:
        before = (await api.get("/api/v1/rules/gas_combustible.high")).json()
        assert before["deadband"] == 2.0
        patched = await api.patch(
            "/api/v1/rules/gas_combustible.high",
            json={"levels": {"4": 8}, "description": "blue lowered"},
            headers={"content-type": "application/merge-patch+json"},
        )
        assert patched.status_code == 200, patched.text
        body = patched.json()
        assert body["deadband"] == 2.0  # kept
        assert body["levels"] == {"4": 8.0, "3": 25.0, "2": 50.0}  # merged key by key
        removed = await api.patch("/api/v1/rules/gas_combustible.high", json={"deadband": None})
        assert removed.json()["deadband"] == 0.0  # null removes: the default
        red = await api.patch("/api/v1/rules/gas_combustible.high", json={"levels": {"2": 45}})
        assert red.status_code == 202 and "approve" in red.json()["how_to_approve"]
        assert (await api.patch("/api/v1/rules/nope", json={})).status_code == 404


async def test_a_selector_matching_no_sensor_is_accepted_with_a_warning(
    settings: Settings,
) -> None:
    cfg = settings.model_copy(update={"mqtt_url": ""})
    async with running_service(cfg) as svc, svc.client() as api:
        spec = {"type": "threshold", "selector": {"kind": "tank_levle"}, "levels": {"3": 80}}
        answer = await api.put("/api/v1/rules/tank.typo", json=spec)
        assert answer.status_code == 200
        (warning,) = answer.json()["warnings"]
        assert "matches no registered sensor" in warning and "'tank_level'" in warning
        good = {**spec, "selector": {"kind": "tank_level"}}
        assert "warnings" not in (await api.put("/api/v1/rules/tank.typo", json=good)).json()
