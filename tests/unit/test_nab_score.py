"""Our NAB scorer against NAB's published per-file scores (benchmarks/README.md §1.6)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from monitor.evaluation.nab_score import PROFILES, Labelled, corpus_score, sweep, window_rows

NAB = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks" / "nab"
pytestmark = pytest.mark.skipif(not NAB.exists(), reason="shared NAB folder not present")


def _items(detector: str) -> list[Labelled]:
    windows = json.loads((NAB / "labels" / "combined_windows.json").read_text())
    out = []
    for name, spans in sorted(windows.items()):
        with (NAB / "published" / "reference_outputs" / detector / name).open() as f:
            rows = list(csv.DictReader(f))
        scores = np.array([float(r["anomaly_score"]) for r in rows])
        rows_of = tuple(window_rows([r["timestamp"] for r in rows], spans))
        out.append(Labelled(name, scores, rows_of))
    return out


def _subset_table() -> dict[tuple[str, str], dict[str, str]]:
    with (NAB / "published" / "scores_on_shared_subset.csv").open() as f:
        return {
            (r["detector_results_dir"], r["profile"]): r
            for r in csv.DictReader(f)
            if r["subset"] == "shared"
        }


@pytest.mark.parametrize("detector", ["numenta", "windowedGaussian"])
@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_per_file_raw_scores_and_counts_match_nab(detector, profile):
    items = _items(detector)
    path = NAB / "published" / "per_file_scores" / f"{detector}_{profile.name}_scores.csv"
    with path.open() as f:
        published = list(csv.DictReader(f))
    threshold = float(published[0]["Threshold"])
    total, results = corpus_score(items, threshold, profile)
    assert len(published) == len(items) == 51
    for row in published:
        mine = results[row["File"]]
        assert mine.raw == pytest.approx(float(row["Score"]), abs=1e-9), row["File"]
        assert (mine.tp, mine.fp, mine.fn, mine.tn) == tuple(
            int(row[k]) for k in ("TP", "FP", "FN", "TN")
        ), row["File"]
    expected = _subset_table()[(detector, profile.name)]
    assert round(total, 2) == float(expected["score_at_published_threshold"])
    # The exact sweep finds the re-optimised threshold and score of the same table.
    best, score = sweep(items, profile)
    assert round(score, 2) == float(expected["score_threshold_reoptimised_on_subset"])
    assert best == pytest.approx(float(expected["reoptimised_threshold"]))


def test_null_detector_scores_zero_and_perfect_scores_100():
    items = _items("numenta")
    for profile in PROFILES:
        null = [Labelled(i.name, np.zeros_like(i.scores), i.windows) for i in items]
        assert corpus_score(null, 0.5, profile)[0] == pytest.approx(0.0)
        perfect = []
        for i in items:
            s = np.zeros_like(i.scores)
            for start, _ in i.windows:
                s[start] = 1.0
            perfect.append(Labelled(i.name, s, i.windows))
        assert corpus_score(perfect, 0.5, profile)[0] == pytest.approx(100.0)
