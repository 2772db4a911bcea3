"""Detector cost (``make bench``): readings per second per core through the anomaly rule in
the rule engine (score, calibrate, learn, grade), for the default detector set and the
others.  One process, one thread; the figure is the median of ``--repeat`` runs."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from monitor.evaluation.nab import NAB_RULE
from monitor.model import ReadingBatch, Sensor, Site, SiteKind
from monitor.registry import Registry
from rules.detectors.specs import (
    DEFAULT_DETECTORS,
    ArtSpec,
    ContextSpec,
    HstSpec,
    PatternSpec,
    RangeSpec,
    StuckSpec,
)
from rules.engine import RuleEngine
from rules.spec import AnomalyRule

SETS = {
    "default (ewma, holt, cusum)": DEFAULT_DETECTORS,
    "record detectors (range, stuck)": (RangeSpec(), StuckSpec()),
    "pattern per reading": (PatternSpec(),),
    "pattern, context (SKAB configuration)": (PatternSpec(), ContextSpec()),
    "pattern over 15-minute blocks, range, stuck (NAB configuration)": NAB_RULE.detectors,
    "pattern over 15-minute blocks (memory 96), range, stuck (the city-gas packs)": (
        PatternSpec(block=900.0, memory=96),
        RangeSpec(),
        StuckSpec(),
    ),
    "art (sequence family, defaults)": (ArtSpec(),),
    "context (sequence family, defaults)": (ContextSpec(),),
    "art over 15-minute blocks, range, stuck (the NAB art variant)": (
        ArtSpec(block=900.0),
        RangeSpec(),
        StuckSpec(),
    ),
    "hst (river, per reading)": (HstSpec(),),
}


# Issue 19's targets: the sets the packs ship, and the NAB configuration.
TARGETS = {
    "default (ewma, holt, cusum)": "≥ 50,000",
    "pattern over 15-minute blocks (memory 96), range, stuck (the city-gas packs)": "≥ 50,000",
    "pattern over 15-minute blocks, range, stuck (NAB configuration)": "≥ 20,000",
}


def measure(detectors: tuple, sensors: int, rounds: int) -> float:
    registry = Registry()
    registry.add_site(Site("s", "s", "t", SiteKind.GAS_NETWORK_ZONE))
    for i in range(sensors):
        registry.add_sensor(Sensor(f"w{i}", "s", "methane_well", "%LEL"), registry.next_key())
    engine = RuleEngine(registry, now=0.0)
    engine.upsert(AnomalyRule(id="a", detectors=detectors, grace=20))
    keys = np.array([registry.keys[f"w{i}"] for i in range(sensors)], np.int32)
    rng = np.random.default_rng(1)
    start = 0.0
    for r in range(rounds + 5):
        if r == 5:  # warm-up done
            start = time.perf_counter()
        ts = np.full(sensors, 60.0 * r)
        values = 1.0 + 0.05 * rng.standard_normal(sensors)
        batch = ReadingBatch(keys, ts, values, np.zeros(sensors, np.int16), ts)
        engine.evaluate(batch, float(ts[0]))
    return sensors * rounds / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sensors", type=int, default=10_000)
    parser.add_argument("--out", default=None)
    parser.add_argument("--only", default="", help="run only the sets whose name contains this")
    args = parser.parse_args()
    lines = [
        "# Detector cost (make bench)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; one thread; {args.sensors} sensors, micro-batches "
        "of one reading per sensor; median of "
        f"{args.repeat} runs.",
        "",
        "| detector set | readings/s per core | target |",
        "|---|---|---|",
    ]
    for name, detectors in SETS.items():
        if args.only not in name:
            continue
        few = "hst" in name
        sensors = 200 if few else args.sensors
        rate = statistics.median(
            measure(detectors, sensors, 20 if few else 50) for _ in range(args.repeat)
        )
        target = TARGETS.get(name, "opt-in")
        lines.append(f"| {name} | {rate:,.0f} | {target} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
