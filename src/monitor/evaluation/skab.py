"""``riskmon eval skab``: SKAB through the production detector path.

Each labelled file is one experiment on a site with eight sensors; every sensor gets its own
detector clones.  A row's alarm is 1 when any of the file's sensors is anomalous (an open
anomaly alert).  The first 400 rows of a file are its training part: streamed through the
detectors like every row, and left out of the metrics (benchmarks/README.md §2.2).
"""

from __future__ import annotations

import csv
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor.evaluation import cv
from monitor.evaluation.replay import Series, replay
from rules.detectors.specs import ArtSpec, ContextSpec, PatternSpec
from rules.spec import AnomalyRule

TRAIN_ROWS = 400
# Faults last minutes, so the models must not adapt to them; one configuration for all files:
# the variant that leave-one-folder-out chooses on all three folders (docs/benchmarks.md).
_BASE = AnomalyRule(id="eval.skab", detectors=(PatternSpec(),), threshold=0.3, adapt_after=100000)
SKAB_RULE = _BASE.model_copy(update={"detectors": (PatternSpec(), ContextSpec()), "threshold": 0.2})


@dataclass(frozen=True)
class Metrics:
    f1: float
    far: float
    mar: float
    tp: int
    fp: int
    fn: int
    tn: int


def metrics(pred: np.ndarray, truth: np.ndarray) -> Metrics:
    tp = int((pred & truth).sum())
    fp = int((pred & ~truth).sum())
    fn = int((~pred & truth).sum())
    tn = int((~pred & ~truth).sum())
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    far = 100 * fp / (fp + tn) if fp + tn else 0.0
    mar = 100 * fn / (fn + tp) if fn + tp else 0.0
    return Metrics(round(f1, 2), round(far, 2), round(mar, 2), tp, fp, fn, tn)


@dataclass(frozen=True)
class Experiment:
    path: Path
    stamps: list[str]
    series: list[Series]  # one per sensor
    truth: np.ndarray  # the anomaly label of every row


def load(data: Path) -> list[Experiment]:
    files = sorted(p for p in data.rglob("*.csv") if p.parent.name != "anomaly-free")
    if not files:
        raise SystemExit(f"no labelled SKAB files under {data}")
    out = []
    for path in files:
        with path.open() as f:
            rows = list(csv.reader(f, delimiter=";"))
        header, body = rows[0], rows[1:]
        sensors = [h for h in header[1:] if h not in ("anomaly", "changepoint")]
        ts = np.array([r[0] for r in body], dtype="datetime64[s]").astype(np.float64)
        cols = {h: np.array([float(r[i]) for r in body]) for i, h in enumerate(header) if i}
        series = [Series(f"{path.name}:{s}", ts, cols[s]) for s in sensors]
        out.append(Experiment(path, [r[0] for r in body], series, cols["anomaly"] > 0.5))
    return out


def predict(
    rule: AnomalyRule, experiments: list[Experiment]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per experiment: each row's alarm (any sensor anomalous) and its highest score."""
    replayed = iter(replay(rule, [s for e in experiments for s in e.series]))
    out = []
    for e in experiments:
        alarm = np.zeros(len(e.stamps), bool)
        score = np.zeros(len(e.stamps))
        for _ in e.series:
            r = next(replayed)
            alarm |= r.anomalous
            score = np.maximum(score, r.score)
        out.append((alarm, score))
    return out


def pooled(experiments: list[Experiment], alarms: list[np.ndarray]) -> Metrics:
    """The metrics over the test rows (after the first ``TRAIN_ROWS``) of these experiments."""
    pred = np.concatenate([a[TRAIN_ROWS:] for a in alarms])
    truth = np.concatenate([e.truth[TRAIN_ROWS:] for e in experiments])
    return metrics(pred, truth)


def run(data: Path, out: Path, rule: AnomalyRule = SKAB_RULE) -> Metrics:
    experiments = load(data)
    n_series = sum(len(e.series) for e in experiments)
    print(f"{len(experiments)} files, {n_series} sensors; scoring ...")
    predicted = predict(rule, experiments)
    for e, (alarm, score) in zip(experiments, predicted, strict=True):
        target = out / e.path.relative_to(data)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["datetime", "anomaly", "prediction", "anomaly_score"])
            for stamp, label, a, sc in zip(e.stamps, e.truth, alarm, score, strict=True):
                writer.writerow([stamp, int(label), int(a), f"{sc:.6f}"])
    return pooled(experiments, [a for a, _ in predicted])


# What ``--cv`` chooses among in each fold: detector sets at two or more thresholds.  Each is
# one replay of the corpus.
_SETS = {
    "pattern": ((PatternSpec(),), (0.2, 0.3, 0.4, 0.5)),
    "pattern-block5s": ((PatternSpec(block=5.0),), (0.2, 0.3)),
    # The sequence families (rules.detectors.sequence), alone and beside ``pattern``.
    "art": ((ArtSpec(),), (0.2, 0.3)),
    "pattern-art": ((PatternSpec(), ArtSpec()), (0.3,)),
    "context": ((ContextSpec(),), (0.2, 0.3)),
    "context-m6": ((ContextSpec(m=6),), (0.2,)),
    "context-block5s": ((ContextSpec(block=5.0),), (0.2,)),
    "pattern-context": ((PatternSpec(), ContextSpec()), (0.2, 0.3)),
}
SKAB_VARIANTS = {
    f"{name}-t{t}": _BASE.model_copy(update={"detectors": detectors, "threshold": t})
    for name, (detectors, thresholds) in _SETS.items()
    for t in thresholds
}


def cross_validate(
    data: Path, variants: dict[str, AnomalyRule], workers: int = 2
) -> cv.Report[float]:
    """Leave one folder out (valve1, valve2, other): the variant with the best F1 on the other
    folders is scored on the held-out one.  The parameter shown is its threshold."""
    experiments = load(data)
    groups = [e.path.parent.name for e in experiments]
    print(
        f"{len(experiments)} files in {len(set(groups))} folders; {len(variants)} variants,"
        f" each one replay of the corpus ({workers} at a time) ...",
        flush=True,
    )
    alarms: dict[str, list[np.ndarray]] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {n: pool.submit(predict, rule, experiments) for n, rule in variants.items()}
        for done, (name, future) in enumerate(futures.items(), 1):
            alarms[name] = [a for a, _ in future.result()]
            print(f"  replayed {done}/{len(variants)}: {name}", flush=True)

    def f1(v: str, idx: list[int]) -> float:  # unrounded, so close variants do not tie
        m = pooled([experiments[i] for i in idx], [alarms[v][i] for i in idx])
        return 2 * m.tp / (2 * m.tp + m.fp + m.fn) if m.tp + m.fp + m.fn else 1.0

    return cv.cross_validate(
        groups,
        list(variants),
        lambda v, idx: (variants[v].threshold, f1(v, idx)),
        lambda v, _t, idx: f1(v, idx),
    )
