"""Every shipped scenario through the real pipeline and PostgreSQL (``riskmon eval scenarios
FILE``), one test each so that the suite's workers share them out: all expected alerts at
their levels' windows, nothing forbidden, and at most 1 false process alert per 1,000
sensor-days in the quiet scenarios (over 5,000 sensor-days with the field's noise and every
fault kind)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor.evaluation.scenarios import SCENARIOS_DIR

pytestmark = pytest.mark.integration

QUIET = {"quiet-fortnight-with-faults", "quiet-city-six-weeks"}
# dynamic risk: the stories' site risk levels in their windows (risk_stories.yaml)
RISK = {"risk-stories": "risk-stories: site risk as expected 7 of 7"}


def _table(text: str) -> dict[str, list[str]]:
    return {
        cells[1]: cells
        for line in text.splitlines()
        if line.startswith("| ") and len(cells := [c.strip() for c in line.split("|")]) > 10
    }


# The longest (six weeks of a city's sensors) takes about 7 minutes on a slow 2-core machine.
@pytest.mark.timeout(1200)
@pytest.mark.parametrize(
    "path", sorted(SCENARIOS_DIR.glob("*.yaml")), ids=lambda p: p.stem.replace("_", "-")
)
def test_a_shipped_scenario_through_the_pipeline(path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "eval", "scenarios", str(path)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    scores, kpis = done.stdout.split("\n\n", 1)  # the scores' table, then the alarm load's
    name = path.stem.replace("_", "-")
    row = _table(scores)[name]
    assert row[-2] == "ok", row
    assert row[6] == "1.00", row  # recall
    if row[3] != "0":  # expected alerts: their levels
        assert float(row[7]) >= 0.9, row  # level accuracy
    if name in QUIET:
        assert float(row[9]) <= 1.0, row  # false process alerts per 1,000 sensor-days
    load = _table(kpis)[name]
    assert int(load[9]) <= 3, load  # alert rows per hazard
    if name in RISK:
        assert RISK[name] in done.stdout, done.stdout
