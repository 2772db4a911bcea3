"""Sensor-health rules: flatline (vectorized) and spikes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from rules.contract import make_evaluator
from rules.derived import DerivedEvaluator
from rules.flatline import FlatlineEvaluator
from rules.spec import DriftRule, FlatlineRule, SpikeRule, parse_rule
from tests.unit.factories import batch, registry

CASES = [
    # (id, [(t, value)], expected [(t, level)]); interval 10 s, factor 3 -> stuck after 30 s
    ("changing_values", [(0, 1), (10, 2), (20, 3), (30, 4), (40, 5)], []),
    ("stuck_exactly_at_limit", [(0, 7), (10, 7), (20, 7), (30, 7)], [(30, 4)]),
    ("stuck_just_short", [(0, 7), (10, 7), (20, 7), (29.9, 7)], []),
    ("within_tolerance_is_stuck", [(0, 7), (10, 7.005), (20, 6.995), (30, 7.0)], [(30, 4)]),
    ("recovers", [(0, 7), (30, 7), (40, 8)], [(30, 4), (40, 0)]),
    ("late_reading_ignored", [(0, 7), (30, 7), (20, 9)], [(30, 4)]),
]


@pytest.mark.parametrize("together", [False, True], ids=["one_by_one", "one_batch"])
@pytest.mark.parametrize(("rows", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_flatline(
    rows: list[tuple[float, float]], expected: list[tuple[float, int]], together: bool
) -> None:
    reg = registry(("a", "s", "x"), ("b", "s", "x"), interval=10)
    ev = FlatlineEvaluator(FlatlineRule(id="flat", factor=3, tolerance=0.01), reg)
    if together:
        if sorted(rows) != rows:
            pytest.skip("a batch is sorted by event time before evaluation")
        # the other sensor changes all the time and interleaves
        other = [("b", t + 0.5, float(i)) for i, (t, _) in enumerate(rows)]
        mixed = sorted([("a", t, v) for t, v in rows] + other, key=lambda r: r[1])
        signals = ev.evaluate(batch(reg, mixed), reg)
        # one batch gives what the readings give one by one (the evaluator contract)
        got = [(s.ts, int(s.level)) for s in signals if s.sensor == "a"]
        assert got == expected
        return
    got = []
    for t, v in rows:
        got += [(s.ts, int(s.level)) for s in ev.evaluate(batch(reg, [("a", t, v)]), reg)]
    assert got == expected


def test_flatline_state_round_trip() -> None:
    reg = registry(("a", "s", "x"), interval=10)
    rule = FlatlineRule(id="flat", factor=3)
    first = FlatlineEvaluator(rule, reg)
    first.evaluate(batch(reg, [("a", 0, 5), ("a", 20, 5)]), reg)
    keys = np.array([1])
    second = FlatlineEvaluator(rule, reg)
    second.import_state(keys, first.export_state(keys))
    assert [int(s.level) for s in second.evaluate(batch(reg, [("a", 30, 5)]), reg)] == [4]


def test_spike_is_flagged_and_a_step_is_only_briefly() -> None:
    reg = registry(("a", "s", "x"))
    rule = SpikeRule.model_validate(
        {"id": "spike", "window_s": 100, "levels": {3: 8}, "min_points": 5, "min_scale": 0.1}
    )
    ev = DerivedEvaluator(rule, reg)
    rng = np.random.default_rng(1)
    rows = [("a", float(t), 10 + float(rng.normal(0, 0.2))) for t in range(0, 60, 5)]
    rows.append(("a", 60.0, 30.0))  # spike
    rows.append(("a", 65.0, 10.1))
    signals = ev.evaluate(batch(reg, rows), reg)
    assert [(s.ts, int(s.level)) for s in signals] == [(60.0, 3), (65.0, 0)]
    assert signals[0].category.value == "sensor_health"


DRIFT_CASES = [
    # (id, baseline values, recent values, expected levels)
    ("stable", [0.5] * 6, [0.5] * 6, []),
    ("shift_exactly_on_blue", [0.5] * 6, [2.5] * 6, [4]),
    ("shift_just_below_blue", [0.5] * 6, [2.49] * 6, []),
    ("downward_shift_counts_too", [5.0] * 6, [2.0] * 6, [4]),
    ("large_shift_yellow", [0.0] * 6, [6.0] * 6, [3]),
]


@pytest.mark.parametrize(
    ("base", "recent", "expected"), [c[1:] for c in DRIFT_CASES], ids=[c[0] for c in DRIFT_CASES]
)
def test_drift(base: list[float], recent: list[float], expected: list[int]) -> None:
    reg = registry(("a", "s", "x"))
    rule = DriftRule.model_validate(
        {
            "id": "drift",
            "window_s": 3600,
            "baseline_s": 3600,
            "levels": {4: 2.0, 3: 5.0},
            "min_points": 5,
        }
    )
    ev = DerivedEvaluator(rule, reg)
    rows = [("a", 600.0 * i, v) for i, v in enumerate(base + recent)]
    signals = [s for r in rows for s in ev.evaluate(batch(reg, [r]), reg)]
    levels = [int(s.level) for s in signals if s.level]
    assert levels == expected
    assert all(s.category.value == "sensor_health" for s in signals)


@pytest.mark.parametrize("kind", ["flatline", "interruption"])
def test_a_factor_beyond_any_interval_means_never(kind: str):
    """The API fuzzer sent a factor of 1.48e308: the limit overflows to infinity, which is
    what it says (never), not an error."""
    reg = registry(("s-1", "site", "gas_combustible"))
    rule = parse_rule({"id": "h", "type": kind, "selector": {"kind": "gas_combustible"},
                       "factor": 1.4803718146394478e308})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluator = make_evaluator(rule, reg, 0.0)
        signals = evaluator.evaluate(batch(reg, [("s-1", 60.0 * i, 1.0) for i in range(50)]), reg)
        signals += evaluator.tick(1e9, reg)
    assert signals == []
