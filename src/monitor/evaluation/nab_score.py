"""NAB scoring (benchmarks/README.md §1.3), written from the description, not from NAB's code.

A file is scored from its per-row anomaly scores, its label windows (row ranges, inclusive)
and one threshold.  ``sweep`` finds the corpus threshold that maximises the raw score exactly,
in one pass over the sorted scores: every file's raw score is a sum of step functions of the
threshold (a window's credit steps at each new running maximum inside it; a row outside the
windows adds its cost while its score is at or above the threshold).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Profile:
    name: str
    tp: float
    fp: float
    fn: float


PROFILES = (
    Profile("standard", 1.0, 0.11, 1.0),
    Profile("reward_low_FP_rate", 1.0, 0.22, 1.0),
    Profile("reward_low_FN_rate", 1.0, 0.11, 2.0),
)


def sigma(x: float) -> float:
    """NAB's scaled sigmoid: 2 / (1 + exp(5x)) - 1."""
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def probation(n_rows: int) -> int:
    return min(math.floor(0.15 * n_rows), 750)


@dataclass(frozen=True)
class FileResult:
    raw: float
    tp: int
    fp: int
    fn: int
    tn: int


@dataclass(frozen=True)
class Labelled:
    """One data file: its scores and its windows as inclusive row ranges."""

    name: str
    scores: np.ndarray
    windows: tuple[tuple[int, int], ...]


def window_rows(
    timestamps: Sequence[str], windows: Sequence[Sequence[str]]
) -> list[tuple[int, int]]:
    """Map label windows (timestamps, inclusive) to inclusive row ranges."""
    stamps = np.array([t[:19] for t in timestamps])
    out = []
    for start, end in windows:
        s = int(np.searchsorted(stamps, start[:19], side="left"))
        e = int(np.searchsorted(stamps, end[:19], side="right")) - 1
        out.append((s, e))
    return out


def _row_values(n: int, windows: Sequence[tuple[int, int]], profile: Profile) -> np.ndarray:
    """The value of a detection on each row outside the windows (NaN inside a window)."""
    values = np.full(n, -profile.fp)
    last_end, last_width = -1, 0
    bounds = sorted(windows)
    w_iter = iter(bounds)
    nxt = next(w_iter, None)
    for i in range(n):
        while nxt is not None and i > nxt[1]:
            last_end, last_width = nxt[1], nxt[1] - nxt[0] + 1
            nxt = next(w_iter, None)
        if nxt is not None and nxt[0] <= i <= nxt[1]:
            values[i] = np.nan
        elif last_end >= 0 and last_width > 1:
            x = (i - last_end) / (last_width - 1)
            values[i] = profile.fp * sigma(x) if x <= 3 else -profile.fp
    return values


def _credit(i: int, start: int, end: int, profile: Profile) -> float:
    width = end - start + 1
    return profile.tp * sigma(-(end - i + 1) / width) / sigma(-1.0)


def score_file(item: Labelled, threshold: float, profile: Profile) -> FileResult:
    scores = item.scores
    n = scores.shape[0]
    p = probation(n)
    detected = scores >= threshold
    detected[:p] = False
    values = _row_values(n, item.windows, profile)
    inside = np.isnan(values)
    raw = float(values[detected & ~inside].sum())
    for start, end in item.windows:
        hits = np.flatnonzero(detected[start : end + 1])
        raw += _credit(start + int(hits[0]), start, end, profile) if hits.size else -profile.fn
    scored = np.arange(n) >= p
    return FileResult(
        raw=raw,
        tp=int((detected & inside).sum()),
        fp=int((detected & ~inside).sum()),
        fn=int((~detected & inside & scored).sum()),
        tn=int((~detected & ~inside & scored).sum()),
    )


def normalise(raw_total: float, n_windows: int, profile: Profile) -> float:
    null = -profile.fn * n_windows
    perfect = profile.tp * n_windows
    return 100.0 * (raw_total - null) / (perfect - null)


def corpus_score(
    items: Sequence[Labelled], threshold: float, profile: Profile
) -> tuple[float, dict[str, FileResult]]:
    """Normalised corpus score at one threshold, with each file's result."""
    results = {item.name: score_file(item, threshold, profile) for item in items}
    n_windows = sum(len(item.windows) for item in items)
    return normalise(sum(r.raw for r in results.values()), n_windows, profile), results


def sweep(items: Sequence[Labelled], profile: Profile) -> tuple[float, float]:
    """The threshold that maximises the corpus raw score, and the normalised score there."""
    keys: list[np.ndarray] = []
    deltas: list[np.ndarray] = []
    base = 0.0
    for item in items:
        scores = item.scores
        p = probation(scores.shape[0])
        values = _row_values(scores.shape[0], item.windows, profile)
        outside = ~np.isnan(values)
        outside[:p] = False
        keys.append(scores[outside])
        deltas.append(values[outside])
        for start, end in item.windows:
            base -= profile.fn
            lo = max(start, p)
            record = -np.inf
            steps: list[tuple[float, float]] = []
            for i in range(lo, end + 1):
                if scores[i] > record:
                    record = float(scores[i])
                    steps.append((record, _credit(i, start, end, profile)))
            # For a threshold in (r_{k-1}, r_k] the window earns c_k; as step functions:
            for k, (r, c) in enumerate(steps):
                following = steps[k + 1][1] if k + 1 < len(steps) else -profile.fn
                keys.append(np.array([r]))
                deltas.append(np.array([c - following]))
    all_keys = np.concatenate(keys) if keys else np.empty(0)
    all_deltas = np.concatenate(deltas) if deltas else np.empty(0)
    n_windows = sum(len(item.windows) for item in items)
    if not all_keys.size:
        return 1.0, normalise(base, n_windows, profile)
    order = np.argsort(-all_keys, kind="stable")
    k_sorted, totals = all_keys[order], base + np.cumsum(all_deltas[order])
    # The total for threshold k_sorted[j] includes every key >= it: the last of a tie run.
    last_of_run = np.append(k_sorted[1:] != k_sorted[:-1], True)
    candidates = np.flatnonzero(last_of_run)
    best = candidates[int(np.argmax(totals[candidates]))]
    best_total = float(totals[best])
    if best_total < base:  # never firing beats every threshold
        return float(np.nextafter(k_sorted[0], np.inf)), normalise(base, n_windows, profile)
    return float(k_sorted[best]), normalise(best_total, n_windows, profile)
