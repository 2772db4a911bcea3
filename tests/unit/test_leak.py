"""City gas: a warm week of sewer biogas stays at blue at most; a real leak after the demand
peak reaches orange or red, and the alert says why (DOMAIN.md 2.4)."""

from __future__ import annotations

import math

import numpy as np

from monitor.model import Sensor
from tests.unit.count_helpers import engine
from tests.unit.factories import batch

RULES = [
    {
        "id": "methane_well.high",
        "type": "leak",
        "selector": {"kind": "methane_well"},
        "levels": {4: 5, 3: 10, 2: 20, 1: 50},
        "deadband": 1,
    }
]
STEP = 600.0  # a reading every 10 minutes
DAY = 86_400.0


def temperature(t: float) -> float:
    return 31 + 7 * math.sin(2 * math.pi * (t / DAY - 0.375))  # warm week, peak mid-afternoon


def test_warm_week_of_biogas_stays_blue_and_a_leak_goes_red() -> None:
    wells = [Sensor(f"w{i}", "zone", "methane_well", "%LEL") for i in range(1, 5)]
    thermo = Sensor("air", "zone", "ambient_temperature", "°C")
    eng = engine(RULES, [*wells, thermo])
    rng = np.random.default_rng(7)
    leak_start = 6 * DAY + 20 * 3600  # the last evening, an hour after the demand peak
    signals = []
    peak_biogas = 0.0
    for step in range(int(7 * DAY / STEP)):
        t = step * STEP
        rows = [("air", t, temperature(t) + rng.normal(0, 0.1))]
        for i in (1, 2, 3):  # biogas follows temperature: up to about 11 %LEL at the peak
            value = 0.62 * (temperature(t) - 20) + i * 0.2 + rng.normal(0, 0.05)
            peak_biogas = max(peak_biogas, value)
            rows.append((f"w{i}", t, value))
        leak = 0.0
        if t >= leak_start:
            leak = 35 + 20 * math.sin(t / 900) + rng.normal(0, 8)  # high and fluctuating
        rows.append(("w4", t, max(0.0, 0.5 + leak + rng.normal(0, 0.05))))
        signals += eng.evaluate(batch(eng.registry, rows), t)
    biogas = [s for s in signals if s.sensor in ("w1", "w2", "w3")]
    assert biogas, "biogas wells did cross the blue set-point"
    assert max(int(s.level) for s in biogas if s.level) == 4  # blue at most
    assert peak_biogas >= 10  # the set-points alone would have made it yellow every afternoon
    raised = [s for s in biogas if s.level]
    assert all(s.evidence["judgement"] == "biogas" for s in raised)
    assert all("following temperature" in s.evidence["why"][0] for s in raised)
    leak = [s for s in signals if s.sensor == "w4" and s.level]
    assert leak and min(int(s.level) for s in leak) <= 2  # orange or red
    worst = min(leak, key=lambda s: int(s.level))
    assert worst.evidence["judgement"] == "leak"
    assert "fluctuating" in worst.evidence["why"][0]
    assert worst.ts >= leak_start
