"""Every shipped scenario through the real pipeline and PostgreSQL (``riskmon eval
scenarios``): all expected alerts at their levels' windows, nothing forbidden, and no false
process alert in the quiet fortnight with faults."""

from __future__ import annotations

import subprocess
import sys

import pytest

from monitor.evaluation.scenarios import SCENARIOS_DIR

pytestmark = pytest.mark.integration


# Five scenarios (482 sensor-days) take about 45 s here and over 120 s on a loaded CI machine.
@pytest.mark.timeout(600)
def test_eval_scenarios_on_the_shipped_scenarios() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "eval", "scenarios", str(SCENARIOS_DIR)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {
        cells[1]: cells
        for line in done.stdout.splitlines()
        if line.startswith("| ") and len(cells := [c.strip() for c in line.split("|")]) > 10
    }
    names = {p.stem.replace("_", "-") for p in SCENARIOS_DIR.glob("*.yaml")}
    assert names <= set(rows)
    for name in names:
        assert rows[name][-2] == "ok", rows[name]
        assert rows[name][6] == "1.00", rows[name]  # recall
    quiet = rows["quiet-fortnight-with-faults"]
    assert quiet[9] == "0.00"  # false process alerts per 1,000 sensor-days
    total = rows["total"]
    assert float(total[7]) >= 0.9  # level accuracy
