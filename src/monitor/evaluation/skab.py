"""``riskmon eval skab``: SKAB through the production detector path.

Each labelled file is one experiment on a site with eight sensors; every sensor gets its own
detector clones.  A row's alarm is 1 when any of the file's sensors is anomalous (an open
anomaly alert).  The first 400 rows of a file are its training part: streamed through the
detectors like every row, and left out of the metrics (benchmarks/README.md §2.2).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor.evaluation.replay import Series, replay
from rules.detectors.specs import PatternSpec
from rules.spec import AnomalyRule

TRAIN_ROWS = 400
# Faults last minutes, so the models must not adapt to them; one configuration for all files.
SKAB_RULE = AnomalyRule(
    id="eval.skab", detectors=(PatternSpec(),), threshold=0.3, adapt_after=100000
)


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


def run(data: Path, out: Path, rule: AnomalyRule = SKAB_RULE) -> Metrics:
    files = sorted(p for p in data.rglob("*.csv") if p.parent.name != "anomaly-free")
    if not files:
        raise SystemExit(f"no labelled SKAB files under {data}")
    tables = []
    series: list[Series] = []
    for path in files:
        with path.open() as f:
            rows = list(csv.reader(f, delimiter=";"))
        header, body = rows[0], rows[1:]
        sensors = [h for h in header[1:] if h not in ("anomaly", "changepoint")]
        ts = np.array([r[0] for r in body], dtype="datetime64[s]").astype(np.float64)
        cols = {h: np.array([float(r[i]) for r in body]) for i, h in enumerate(header) if i}
        tables.append((path, body, len(sensors), cols))
        series += [Series(f"{path.name}:{s}", ts, cols[s]) for s in sensors]
    print(f"{len(files)} files, {len(series)} sensors; scoring ...")
    replayed = iter(replay(rule, series, progress=True))
    preds, truths = [], []
    for path, body, n_sensors, cols in tables:
        n = len(body)
        alarm = np.zeros(n, bool)
        score = np.zeros(n)
        for _ in range(n_sensors):
            r = next(replayed)
            alarm |= r.anomalous
            score = np.maximum(score, r.score)
        target = out / path.relative_to(data)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["datetime", "anomaly", "prediction", "anomaly_score"])
            for i in range(n):
                label = int(float(cols["anomaly"][i]))
                writer.writerow([body[i][0], label, int(alarm[i]), f"{score[i]:.6f}"])
        preds.append(alarm[TRAIN_ROWS:])
        truths.append(cols["anomaly"][TRAIN_ROWS:] > 0.5)
    return metrics(np.concatenate(preds), np.concatenate(truths))
