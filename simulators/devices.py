"""Device models for the basic simulator: gas detectors with a scripted leak and a tank farm
with a scripted overfill.  Seeded and reproducible; time is an argument."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field


@dataclass
class GasDetector:
    """Combustible gas, %LEL.  Background near zero; a leak plume that rises and fluctuates
    with the wind from ``leak_at`` (seconds since start) on, if set."""

    sensor: str
    leak_at: float | None = None
    peak: float = 60.0
    rise_s: float = 10.0
    rng: random.Random = field(default_factory=lambda: random.Random(1))

    def value(self, t: float) -> float:
        base = max(0.0, 0.8 + self.rng.gauss(0, 0.3))
        if self.leak_at is None or t < self.leak_at:
            return round(base, 2)
        grow = min(1.0, (t - self.leak_at) / self.rise_s)
        wind = 0.75 + 0.25 * math.sin(t / 7.0) + self.rng.gauss(0, 0.05)
        return round(base + self.peak * grow * wind, 2)


@dataclass
class TankLevel:
    """Tank level, % of height: slow fill and empty cycles; from ``overfill_at`` on the
    fill does not stop and the level climbs towards 100 %."""

    sensor: str
    overfill_at: float | None = None
    period_s: float = 600.0
    rng: random.Random = field(default_factory=lambda: random.Random(2))

    climb_per_s: float = 4.0

    def value(self, t: float) -> float:
        level = 50 + 25 * math.sin(2 * math.pi * t / self.period_s) + self.rng.gauss(0, 0.2)
        if self.overfill_at is not None and t >= self.overfill_at:
            level = min(99.5, level + (t - self.overfill_at) * self.climb_per_s)
        return round(level, 2)


# Quiet operating points per sensor kind, far from every default threshold.
BASELINES: dict[str, tuple[float, float]] = {
    "gas_toxic": (0.3, 0.05),
    "oxygen": (20.9, 0.05),
    "tank_temperature": (24.0, 0.3),
    "tank_pressure": (180.0, 1.0),
    "methane_well": (0.5, 0.1),
    "pipe_pressure": (350.0, 2.0),
}


@dataclass
class Steady:
    """Any other kind: a steady value with a little noise."""

    sensor: str
    mean: float = 20.0
    noise: float = 0.2
    rng: random.Random = field(default_factory=lambda: random.Random(3))

    def value(self, t: float) -> float:
        return round(self.mean + self.rng.gauss(0, self.noise), 3)


Device = GasDetector | TankLevel | Steady
