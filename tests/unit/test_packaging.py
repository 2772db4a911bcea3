"""An installed riskmon (a wheel, not this checkout) finds its data files: the demo set, the
scenarios, the rule packs and the console page are package data found through
importlib.resources (they were found through ``Path(__file__).parents[...]`` before, which
only works in an editable checkout)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, monitor.cli as cli, monitor.evaluation.scenarios as scn, rules.engine as eng
from importlib import resources
console = resources.files("monitor") / "console" / "index.html"
print(json.dumps({"demo": str(cli.DEMO_CONFIG), "scenarios": str(scn.SCENARIOS_DIR),
                  "packs": str(eng.PACKS_DIR), "console": console.is_file(),
                  "n_scenarios": len(list(scn.SCENARIOS_DIR.glob("*.yaml"))),
                  "n_packs": len(list(eng.PACKS_DIR.glob("*.yaml"))),
                  "demo_exists": cli.DEMO_CONFIG.is_file()}))
"""


@pytest.mark.timeout(300)
def test_an_installed_wheel_finds_its_data_files(tmp_path: Path) -> None:
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("riskmon-*.whl")
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the checkout
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
    )
    found = json.loads(out.stdout)
    for key in ("demo", "scenarios", "packs"):
        assert found[key].startswith(str(target)), (key, found[key])
    assert found["demo_exists"] and found["console"]
    assert found["n_scenarios"] >= 5 and found["n_packs"] >= 5
