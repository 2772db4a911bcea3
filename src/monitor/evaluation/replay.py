"""Replays recorded series through the production rule engine with one anomaly rule in
shadow mode, and collects the per-reading verdicts that shadow mode records.

Every series is its own sensor (its own detector clones).  Series are interleaved in
micro-batches sorted by event time, exactly as the pipeline hands them to the engine, so
the verdicts are what the service would have produced, causally, reading by reading.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from monitor.model import ReadingBatch, Sensor, Site, SiteKind
from monitor.registry import Registry
from rules.engine import RuleEngine
from rules.spec import AnomalyRule


@dataclass(frozen=True)
class Series:
    name: str
    ts: np.ndarray  # epoch seconds, increasing
    values: np.ndarray


@dataclass
class Replayed:
    score: np.ndarray
    reported: np.ndarray
    anomalous: np.ndarray


def replay(
    rule: AnomalyRule, series: Sequence[Series], chunk: int = 512, progress: bool = False
) -> list[Replayed]:
    registry = Registry()
    registry.add_site(Site("eval", "evaluation", "eval", SiteKind.MAJOR_HAZARD_SOURCE))
    for i, _ in enumerate(series):
        registry.add_sensor(Sensor(f"s{i}", "eval", "eval", ""), registry.next_key())
    engine = RuleEngine(registry, now=0.0)
    engine.upsert(
        rule.model_copy(
            update={"shadow": True, "selector": rule.selector.model_copy(update={"kind": "eval"})}
        )
    )
    longest = max((len(s.values) for s in series), default=0)
    out = [
        Replayed(np.zeros(len(s.ts)), np.zeros(len(s.ts)), np.zeros(len(s.ts), bool))
        for s in series
    ]
    for start in range(0, longest, chunk):
        parts = [
            (registry.keys[f"s{i}"], s.ts[start : start + chunk], s.values[start : start + chunk])
            for i, s in enumerate(series)
        ]
        keys = np.concatenate([np.full(len(t), k, np.int32) for k, t, _ in parts])
        ts = np.concatenate([t for _, t, _ in parts])
        values = np.concatenate([v for _, _, v in parts])
        order = np.argsort(ts, kind="stable")
        batch = ReadingBatch(
            keys[order], ts[order], values[order], np.zeros(len(ts), np.int16), ts[order]
        )
        engine.judge(batch, float(ts.max()), allowed_lateness_s=float("inf"))
        for scores in engine.drain_shadow():
            for i, sensor in enumerate(scores.sensors):
                n = int(sensor[1:])  # the series of sensor "s{n}"
                mine = scores.sensor == i
                at = np.searchsorted(series[n].ts, scores.ts[mine])
                out[n].score[at] = scores.score[mine]
                out[n].reported[at] = scores.reported[mine]
                out[n].anomalous[at] = scores.anomalous[mine]
        if progress:
            print(f"\r  {min(start + chunk, longest)}/{longest} rows", end="", file=sys.stderr)
    if progress:
        print(file=sys.stderr)
    return out
