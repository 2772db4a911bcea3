"""The rule engine alone (``make bench``): readings per second judged by every shipped pack, one
process, one thread, with every rule window full.

Per sensor kind, ``--sensors`` sensors of that kind on 50 sites, one reading each per
``--interval`` s of event time: values around a quiet level with noise, and now and then one
past the kind's orange set-point (so thresholds cross, and alerts open and clear).  Before the
timed part, ``--hours`` of event time are judged at one reading every 10 minutes, so the drift,
window, rate and leak rules hold full windows.  Then ``--steps`` steps are judged in
micro-batches of ``--batch`` readings (the pipeline takes up to 20,000); the figure is the
median of ``--repeat`` runs.  What the service adds around the rules (transport, decoding,
normalizing, the store) is measured end to end by ``tests.bench.city`` and ``tests.bench.peer``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

from monitor.model import ReadingBatch, Sensor, Site, SiteKind
from monitor.registry import Registry
from rules.engine import RuleEngine, load_pack

PACKS = ("common", "hazchem", "tailings", "mine_slope", "city_gas")
# kind: (unit, quiet level, noise, a value past orange)
KINDS = {
    "gas_combustible": ("%LEL", 3.0, 0.6, 60.0),
    "methane_well": ("%LEL", 1.5, 0.3, 25.0),
    "tank_level": ("%", 60.0, 0.3, 97.0),
}


def engine_for(kind: str, sensors: int, interval: float, t0: float) -> RuleEngine:
    registry = Registry()
    for s in range(50):
        registry.add_site(Site(f"s{s}", f"site {s}", "t", SiteKind.MAJOR_HAZARD_SOURCE))
    unit = KINDS[kind][0]
    for i in range(sensors):
        registry.add_sensor(Sensor(f"x{i}", f"s{i % 50}", kind, unit, interval), i + 1)
    engine = RuleEngine(registry, t0)
    for pack in PACKS:
        for rule in load_pack(pack):
            engine.upsert(rule, t0)
    return engine


def step(kind: str, sensors: int, ts: float, rng: np.random.Generator) -> ReadingBatch:
    _, level, noise, high = KINDS[kind]
    values = np.maximum(0.0, rng.normal(level, noise, sensors))
    values[rng.random(sensors) < 5e-4] = high
    n = sensors
    keys = np.arange(1, n + 1, dtype=np.int32)
    return ReadingBatch(
        keys, np.full(n, ts), np.round(values, 2), np.zeros(n, np.int16), np.full(n, ts)
    )


def measure(kind: str, args: argparse.Namespace) -> float:
    t0 = 1.7e9
    engine = engine_for(kind, args.sensors, args.interval, t0)
    rng = np.random.default_rng(7)
    warm = int(args.hours * 3600 / 600)  # a reading every 10 minutes fills the windows
    for i in range(warm):
        batch = step(kind, args.sensors, t0 + 600.0 * i, rng)
        engine.judge(batch, float(batch.ts[0]), 300.0)
        engine.drain_shadow()
    start_ts = t0 + 600.0 * warm
    per_batch = max(1, args.batch // args.sensors)
    judged, took = 0, 0.0
    for i in range(0, args.steps, per_batch):
        parts = [
            step(kind, args.sensors, start_ts + args.interval * (i + j), rng)
            for j in range(per_batch)
        ]
        batch = ReadingBatch.concat(parts)
        began = time.perf_counter()
        engine.judge(batch, float(batch.ts[-1]), 300.0)
        engine.drain_shadow()
        took += time.perf_counter() - began
        judged += len(batch)
    return judged / took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sensors", type=int, default=1_000)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--hours", type=float, default=31.0, help="event time judged first")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    lines = [
        "# The rule engine alone (make bench)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; one thread.",
        f"Command: `python -m tests.bench.engine {' '.join(sys.argv[1:])}`",
        "",
        f"{args.sensors:,} sensors of one kind, every shipped pack, windows full ({args.hours:g} h "
        f"of event time judged first), then {args.steps} readings each {args.interval:g} s apart "
        f"in micro-batches of {max(1, args.batch // args.sensors) * args.sensors:,}; median of "
        f"{args.repeat} runs.",
        "",
        "| kind | readings/s judged | runs |",
        "|---|---|---|",
    ]
    for kind in KINDS:
        runs = [measure(kind, args) for _ in range(args.repeat)]
        lines.append(
            f"| {kind} | {statistics.median(runs):,.0f} | {', '.join(f'{r:,.0f}' for r in runs)} |"
        )
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
