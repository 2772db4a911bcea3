"""Cross-validation over groups of files (``riskmon eval nab --cv``, ``eval skab --cv``).

Leave one group out: for each fold every variant is fitted on the other groups (its free
parameter, such as NAB's threshold, chosen there) and the variant that scores best there is
scored on the held-out group.  A fold never sees its own group's labels, so the held-out
scores say how a setting does on data it was not tuned on.  Pure: the scoring functions are
passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import mean
from typing import Generic, TypeVar

P = TypeVar("P")  # a fitted parameter (a threshold)


@dataclass(frozen=True)
class Fold(Generic[P]):
    held_out: str
    variant: str  # chosen on the other groups
    parameter: P
    train: float  # its score on the other groups
    test: float  # its score on the held-out group


@dataclass(frozen=True)
class Report(Generic[P]):
    folds: tuple[Fold[P], ...]
    in_sample: dict[str, float]  # each variant fitted and scored on every group
    # Each variant cross-validated on its own (only its parameter chosen per fold): the mean
    # of its scored folds.
    alone: dict[str, float] = field(default_factory=dict)

    @property
    def scored(self) -> list[Fold[P]]:
        """The folds with a score (NaN: the held-out group cannot be scored alone)."""
        return [f for f in self.folds if not math.isnan(f.test)]

    @property
    def mean(self) -> float:
        return mean(f.test for f in self.scored)

    @property
    def worst(self) -> Fold[P]:
        return min(self.scored, key=lambda f: f.test)


def cross_validate(
    groups: Sequence[str],
    variants: Sequence[str],
    fit: Callable[[str, list[int]], tuple[P, float]],
    score: Callable[[str, P, list[int]], float],
) -> Report[P]:
    """``groups[i]``: the group of item i.  ``fit(variant, items)``: the parameter chosen on
    those items and the score there; ``score(variant, parameter, items)``: the score there
    (NaN when the items cannot be scored alone: such a fold is shown, not averaged)."""
    names = sorted(set(groups))
    if len(names) < 2:
        raise ValueError("cross-validation needs at least two groups")
    folds = []
    alone: dict[str, list[float]] = {v: [] for v in variants}
    for held in names:
        train = [i for i, g in enumerate(groups) if g != held]
        test = [i for i, g in enumerate(groups) if g == held]
        fitted = {v: fit(v, train) for v in variants}
        tested = {v: score(v, fitted[v][0], test) for v in variants}
        best = max(variants, key=lambda v: fitted[v][1])  # ties: the first listed
        parameter, train_score = fitted[best]
        folds.append(Fold(held, best, parameter, train_score, tested[best]))
        for v in variants:
            if not math.isnan(tested[v]):
                alone[v].append(tested[v])
    everything = list(range(len(groups)))
    in_sample = {v: fit(v, everything)[1] for v in variants}
    return Report(tuple(folds), in_sample, {v: mean(s) for v, s in alone.items() if s})


def format_report(report: Report[P]) -> str:
    """Per fold, the mean and worst held-out scores, and the in-sample score of each variant."""
    lines = ["| held-out group | variant chosen on the others | parameter | others | held out |"]
    lines.append("|---|---|---|---|---|")
    for f in report.folds:
        p = f"{f.parameter:.6g}" if isinstance(f.parameter, float) else str(f.parameter)
        test = "n/a" if math.isnan(f.test) else f"{f.test:.2f}"
        lines.append(f"| {f.held_out} | {f.variant} | {p} | {f.train:.2f} | {test} |")
    worst = report.worst
    lines += [
        "",
        f"cross-validated: mean {report.mean:.2f} over {len(report.scored)} folds,"
        f" worst {worst.test:.2f} ({worst.held_out})",
        "each variant: cross-validated on its own (mean of its held-out folds), and in-sample"
        " (fitted and scored on every group; not a generalization figure):",
    ]
    lines += [
        f"  {v:24s} {report.alone.get(v, math.nan):7.2f} {s:7.2f}"
        for v, s in report.in_sample.items()
    ]
    return "\n".join(lines)
