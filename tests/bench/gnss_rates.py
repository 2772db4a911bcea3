"""GNSS displacement rates on the field's noise (issue 16): alert openings per 1,000
sensor-days of quiet dam points (0.3 mm/d creep, ``simulators.physics.GnssError``, single
outliers of 8-16 mm either way at ``--outliers`` per 30 days, 10-minute readings) under the
rules as they shipped first (1-day least-squares rate, 1-hour least-squares red at once), as
they shipped until session 12 (36 h Theil-Sen at once, 1-hour Theil-Sen red held 15 min) and
as the tailings pack ships them now (the 36 h rate held 2 h, the red rate over 2 h).  Through
the rule engine; no service.  The shipped settings were chosen on the series of seeds below
200; ``--first-seed`` (default 1000) keeps the figures on series they were not chosen on.

    python -m tests.bench.gnss_rates [--sensors 20] [--days 20] [--outliers 10] [--first-seed N]
"""

from __future__ import annotations

import argparse
import random

import numpy as np

from monitor.model import ReadingBatch, Sensor, Site, SiteKind
from monitor.registry import Registry
from rules.engine import RuleEngine, load_pack
from rules.spec import Rule, parse_rule
from simulators.physics import GnssError

BEFORE: list[dict[str, object]] = [
    {"id": "surface_displacement.rate_d", "type": "rate", "selector": {"kind": "surface_displacement"},
     "span_s": 86400, "per_s": 86400, "absolute": True, "method": "regression",
     "levels": {4: 2.0001, 3: 5.0001, 2: 10.0001}},
    {"id": "surface_displacement.rate_h", "type": "rate", "selector": {"kind": "surface_displacement"},
     "span_s": 3600, "per_s": 3600, "absolute": True, "method": "regression", "levels": {1: 5}},
]  # fmt: skip
UNTIL_SESSION_12: dict[str, dict[str, object]] = {
    "surface_displacement.rate_d": {"on_delay_s": 0.0},
    "surface_displacement.rate_h": {"span_s": 3600.0, "min_points": 4},
}


def series(seed: int, days: float, outliers: int) -> np.ndarray:
    rng = random.Random(seed)
    error = GnssError(rng)
    t = 600.0 * np.arange(int(days * 144))
    x = 0.3 * t / 86400 + np.array([error(v) for v in t.tolist()])
    for i in rng.sample(range(300, t.shape[0]), int(outliers * days / 30)):
        x[i] += rng.choice((-1, 1)) * rng.uniform(8, 16)
    return x


def shipped() -> list[Rule]:
    """The tailings pack's displacement rules as shipped."""
    return [r for r in load_pack("tailings") if r.id.startswith("surface_displacement")]


def openings(
    rules: list[Rule], sensors: int, days: float, outliers: int, first_seed: int
) -> dict[str, int]:
    registry = Registry()
    registry.add_site(Site("d", "dam", "t", SiteKind.TAILINGS_DAM))
    for i in range(sensors):
        registry.add_sensor(Sensor(f"g{i}", "d", "surface_displacement", "mm", 600.0), i + 1)
    engine = RuleEngine(registry, now=0.0)
    for rule in rules:
        engine.upsert(rule)
    data = np.array([series(first_seed + i, days, outliers) for i in range(sensors)])
    t0 = 1_790_000_000.0
    level: dict[tuple[str, str | None], int] = {}
    opened: dict[str, int] = {r.id: 0 for r in rules}
    for step in range(0, data.shape[1], 36):  # six hours of readings a batch
        cols = np.arange(step, min(step + 36, data.shape[1]))
        keys = np.repeat(np.arange(1, sensors + 1, dtype=np.int32), cols.shape[0])
        ts = np.tile(t0 + 600.0 * cols, sensors)
        values = data[:, cols].reshape(-1)
        batch = ReadingBatch(keys, ts, values, np.zeros(keys.shape[0], np.int16), ts.copy())
        for s in engine.judge(batch, float(ts.max()), 300.0)[0]:
            before = level.get((s.rule, s.sensor), 0)
            opened[s.rule] = opened.get(s.rule, 0) + (before == 0 and s.level != 0)
            level[(s.rule, s.sensor)] = int(s.level)
    return opened


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sensors", type=int, default=20)
    ap.add_argument("--days", type=float, default=20.0)
    ap.add_argument("--outliers", type=int, default=10, help="single outliers per 30 days")
    ap.add_argument("--first-seed", type=int, default=1000, help="the first point's series")
    args = ap.parse_args()
    sensor_days = args.sensors * args.days
    until = [r.model_copy(update=UNTIL_SESSION_12.get(r.id, {})) for r in shipped()]
    print(f"{sensor_days:.0f} sensor-days, {args.outliers} outliers per 30 days per point")
    print("| rules | rule | openings | per 1,000 sensor-days |\n|---|---|---|---|")
    variants = (("first", [parse_rule(r) for r in BEFORE]), ("until session 12", until))
    for name, rules in (*variants, ("shipped", shipped())):
        found = openings(rules, args.sensors, args.days, args.outliers, args.first_seed)
        for rule, n in sorted(found.items()):
            print(f"| {name} | {rule} | {n} | {1000 * n / sensor_days:.1f} |")


if __name__ == "__main__":
    main()
