"""``riskmon eval nab``: the NAB corpus through the production detector path, scored with
``nab_score`` for the three profiles."""

from __future__ import annotations

import csv
import json
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor.evaluation import cv
from monitor.evaluation.nab_score import (
    PROFILES,
    Labelled,
    Profile,
    corpus_score,
    normalise,
    score_file,
    sweep,
    window_rows,
)
from monitor.evaluation.replay import Series, replay
from rules.detectors.specs import (
    AnyDetectorSpec,
    ArtSpec,
    ContextSpec,
    PatternSpec,
    RangeSpec,
    StuckSpec,
)
from rules.spec import AnomalyRule

# One configuration for every file: the pattern detector over 15-minute means (3 readings at
# the corpus's usual 5-minute rate; its memory of 333 windows spans the same 3.5 days as the
# per-reading default there) with the two record detectors (a new extreme, a stuck value).
# The cheap default set scores lower on NAB (see docs/benchmarks.md).
NAB_RULE = AnomalyRule(
    id="eval.nab",
    detectors=(PatternSpec(block=900.0, memory=333), RangeSpec(), StuckSpec()),
)

# What ``--cv`` chooses among in each fold (with the threshold): the shipped rule, its
# neighbours and the sequence families (rules.detectors.sequence); all but ``-alone`` beside
# the record detectors (range, stuck).  Each is one replay of the corpus.
_Q = 900.0  # 15-minute steps
_SHAPES: dict[str, tuple[AnyDetectorSpec, ...]] = {
    "pattern-15min": (PatternSpec(block=_Q, memory=333),),
    "pattern-30min": (PatternSpec(block=2 * _Q, memory=167),),
    "pattern-reading": (PatternSpec(),),
    "art-15min": (ArtSpec(block=_Q),),
    "context-15min": (ContextSpec(block=_Q),),
    "art-15min-v85": (ArtSpec(block=_Q, vigilance=0.85),),
    "art-15min-v95": (ArtSpec(block=_Q, vigilance=0.95),),
    "art-15min-c256": (ArtSpec(block=_Q, categories=256),),
    "art-15min-m4": (ArtSpec(block=_Q, m=4),),
    "art-30min": (ArtSpec(block=2 * _Q),),
    "art-reading": (ArtSpec(),),
    "context-15min-w05": (ContextSpec(block=_Q, width=0.5),),
    "context-15min-w2": (ContextSpec(block=_Q, width=2.0),),
    "context-15min-m6": (ContextSpec(block=_Q, m=6),),
    "pattern-art-15min": (PatternSpec(block=_Q, memory=333), ArtSpec(block=_Q)),
}
NAB_VARIANTS = {
    name: NAB_RULE.model_copy(update={"detectors": (*shapes, RangeSpec(), StuckSpec())})
    for name, shapes in _SHAPES.items()
}
NAB_VARIANTS["pattern-15min-alone"] = NAB_RULE.model_copy(
    update={"detectors": _SHAPES["pattern-15min"]}
)


@dataclass(frozen=True)
class NabFile:
    name: str  # <category>/<file>.csv
    stamps: list[str]
    series: Series
    windows: tuple[tuple[int, int], ...]


def load(data: Path, labels: Path) -> list[NabFile]:
    windows = json.loads(labels.read_text())
    out = []
    for name in sorted(windows):
        path = data / name
        if not path.exists():
            continue
        with path.open() as f:
            rows = list(csv.DictReader(f))
        stamps = [r["timestamp"] for r in rows]
        ts = np.array(stamps, dtype="datetime64[s]").astype(np.float64)
        values = np.array([float(r["value"]) for r in rows])
        out.append(
            NabFile(
                name, stamps, Series(name, ts, values), tuple(window_rows(stamps, windows[name]))
            )
        )
    return out


def run(
    data: Path, labels: Path, out: Path, threshold: float | None, rule: AnomalyRule = NAB_RULE
) -> dict[str, tuple[float, float]]:
    """Score every file, write OUT/<category>/<name>.csv, return profile -> (threshold,
    normalised score)."""
    files = load(data, labels)
    if not files:
        raise SystemExit(f"no labelled NAB files under {data}")
    print(f"{len(files)} files, {sum(len(f.windows) for f in files)} windows; scoring ...")
    replayed = replay(rule, [f.series for f in files], progress=True)
    items = []
    for f, r in zip(files, replayed, strict=True):
        target = out / f.name
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["timestamp", "value", "anomaly_score"])
            for stamp, value, score in zip(f.stamps, f.series.values, r.reported, strict=True):
                writer.writerow([stamp, repr(float(value)), f"{score:.6f}"])
        items.append(Labelled(f.name, np.round(r.reported, 6), f.windows))
    results = {}
    for profile in PROFILES:
        if threshold is None:
            results[profile.name] = sweep(items, profile)
        else:
            results[profile.name] = (threshold, corpus_score(items, threshold, profile)[0])
    return results


def _scores(rule: AnomalyRule, files: list[NabFile]) -> list[Labelled]:
    replayed = replay(rule, [f.series for f in files])
    return [
        Labelled(f.name, np.round(r.reported, 6), f.windows)
        for f, r in zip(files, replayed, strict=True)
    ]


def cross_validate(
    data: Path, labels: Path, variants: dict[str, AnomalyRule], workers: int = 2
) -> dict[str, tuple[cv.Report[float], float]]:
    """Leave one NAB category out, for each profile: the variant and threshold are chosen on
    the other six categories (NAB's sweep there) and scored on the held-out one.  With each
    report, the pooled held-out score (``pooled``)."""
    files = load(data, labels)
    if not files:
        raise SystemExit(f"no labelled NAB files under {data}")
    groups = [f.name.split("/")[0] for f in files]
    print(
        f"{len(files)} files in {len(set(groups))} categories; {len(variants)} variants,"
        f" each one replay of the corpus ({workers} at a time) ...",
        flush=True,
    )
    items: dict[str, list[Labelled]] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {name: pool.submit(_scores, rule, files) for name, rule in variants.items()}
        for done, (name, future) in enumerate(futures.items(), 1):
            items[name] = future.result()
            print(f"  replayed {done}/{len(variants)}: {name}", flush=True)
    reports = {}
    for profile in PROFILES:

        def fit(v: str, idx: list[int], profile: Profile = profile) -> tuple[float, float]:
            return sweep([items[v][i] for i in idx], profile)

        def score(v: str, t: float, idx: list[int], profile: Profile = profile) -> float:
            chosen = [items[v][i] for i in idx]  # a category without windows: not normalisable
            if not any(f.windows for f in chosen):
                return math.nan
            return corpus_score(chosen, t, profile)[0]

        report = cv.cross_validate(groups, list(variants), fit, score)
        reports[profile.name] = (report, pooled(report, items, groups, profile))
    return reports


def pooled(
    report: cv.Report[float], items: dict[str, list[Labelled]], groups: list[str], profile: Profile
) -> float:
    """The whole corpus scored fold by fold: each category's files with the variant and
    threshold chosen without it (their raw scores summed, then normalised over every window;
    so a category without windows counts by its false positives)."""
    raw, windows = 0.0, 0
    for fold in report.folds:
        mine = [items[fold.variant][i] for i, g in enumerate(groups) if g == fold.held_out]
        raw += sum(score_file(f, fold.parameter, profile).raw for f in mine)
        windows += sum(len(f.windows) for f in mine)
    return normalise(raw, windows, profile)
