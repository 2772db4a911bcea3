"""Cross-validation: a fold never fits on its held-out group, and scores only that group."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.evaluation.cv import cross_validate, format_report


@given(st.lists(st.sampled_from("abcd"), min_size=2, max_size=30).filter(lambda g: len(set(g)) > 1))
def test_folds_fit_on_the_others_and_score_the_held_out_group(groups: list[str]) -> None:
    seen: list[tuple[str, list[int]]] = []

    def fit(variant: str, idx: list[int]) -> tuple[float, float]:
        seen.append(("fit", idx))
        return float(len(idx)), {"x": 1.0, "y": 2.0}[variant] * len(idx)

    def score(variant: str, parameter: float, idx: list[int]) -> float:
        seen.append(("score", idx))
        return -parameter

    report = cross_validate(groups, ["x", "y"], fit, score)
    assert [f.held_out for f in report.folds] == sorted(set(groups))
    for fold in report.folds:
        mine = [i for i, g in enumerate(groups) if g == fold.held_out]
        others = [i for i, g in enumerate(groups) if g != fold.held_out]
        assert fold.variant == "y"  # the better one on the others
        assert fold.parameter == len(others) and fold.test == -len(others)
        assert ("score", mine) in seen
    scored = [idx for kind, idx in seen if kind == "score"]
    fitted = [idx for kind, idx in seen if kind == "fit"]
    held = [[i for i, g in enumerate(groups) if g == f.held_out] for f in report.folds]
    # the held-out group is only ever scored (once per variant), never fitted on
    assert scored == [h for h in held for _ in range(2)]
    assert all(set(idx).isdisjoint(h) for idx, h in zip(fitted[::2], held, strict=False))
    assert report.in_sample == {"x": len(groups), "y": 2.0 * len(groups)}
    others = [sum(g != f.held_out for g in groups) for f in report.folds]
    assert report.alone == {v: -sum(others) / len(others) for v in ("x", "y")}
    assert report.mean == sum(f.test for f in report.folds) / len(report.folds)
    assert report.worst.test == min(f.test for f in report.folds)


def test_the_report_names_each_fold_mean_worst_and_in_sample() -> None:
    report = cross_validate(
        ["a", "a", "b"], ["v"], lambda v, idx: (0.5, 1.0), lambda v, t, idx: 10.0 * len(idx)
    )
    text = format_report(report)
    assert "| a | v | 0.5 | 1.00 | 20.00 |" in text and "| b | v | 0.5 | 1.00 | 10.00 |" in text
    assert "mean 15.00 over 2 folds, worst 10.00 (b)" in text
    assert "in-sample" in text


def test_one_group_is_refused() -> None:
    with pytest.raises(ValueError, match="two groups"):
        cross_validate(["a", "a"], ["v"], lambda v, idx: (0, 0), lambda v, t, idx: 0)
