"""Table-driven edges of the threshold state machine."""

from __future__ import annotations

from typing import Any

import pytest

from rules.spec import ThresholdRule
from rules.threshold import ThresholdEvaluator
from tests.unit.factories import batch, registry

HIGH: dict[str, Any] = {"id": "r", "selector": {"kind": "gas"}, "levels": {4: 10, 3: 25, 2: 50}}
LOW: dict[str, Any] = {**HIGH, "direction": "low", "levels": {1: 1.0, 2: 1.1, 3: 1.2}}

CASES = [
    # (id, rule overrides, [(t, value)], expected [(t, level)] of emitted signals)
    ("below", HIGH, [(0, 9.99)], []),
    ("exactly_on_threshold", HIGH, [(0, 10.0)], [(0, 4)]),
    ("most_severe_wins", HIGH, [(0, 60)], [(0, 2)]),
    ("escalate_then_clear", HIGH, [(0, 12), (1, 30), (2, 1)], [(0, 4), (1, 3), (2, 0)]),
    ("inside_deadband_holds", {**HIGH, "deadband": 2}, [(0, 25), (1, 23.5), (2, 23.01)], [(0, 3)]),
    ("just_past_deadband", {**HIGH, "deadband": 2}, [(0, 25), (1, 22.99)], [(0, 3), (1, 4)]),
    ("deadband_edge_exact_holds", {**HIGH, "deadband": 2}, [(0, 25), (1, 23.0)], [(0, 3)]),
    ("on_delay_just_met", {**HIGH, "on_delay_s": 10}, [(0, 30), (5, 30), (10, 30)], [(10, 3)]),
    ("on_delay_just_missed", {**HIGH, "on_delay_s": 10}, [(0, 30), (9.99, 30), (10.5, 1)], []),
    (
        "on_delay_keeps_timer_when_worsening",
        {**HIGH, "on_delay_s": 10},
        [(0, 30), (6, 60), (10, 60)],
        [(10, 2)],
    ),
    (
        "off_delay_just_met",
        {**HIGH, "off_delay_s": 30},
        [(0, 12), (10, 1), (40, 1)],
        [(0, 4), (40, 0)],
    ),
    (
        "off_delay_just_missed",
        {**HIGH, "off_delay_s": 30},
        [(0, 12), (10, 1), (39.9, 1), (45, 12)],
        [(0, 4)],
    ),
    ("low_exactly_on", LOW, [(0, 1.2)], [(0, 3)]),
    ("low_most_severe", LOW, [(0, 0.9), (1, 1.5)], [(0, 1), (1, 0)]),
    ("late_reading_not_evaluated", HIGH, [(10, 1), (5, 60)], []),
    ("duplicate_ignored", HIGH, [(0, 12), (0, 60)], [(0, 4)]),
]


@pytest.mark.parametrize(
    ("rule", "rows", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_threshold_edges(
    rule: dict[str, Any], rows: list[tuple[float, float]], expected: list[tuple[float, int]]
) -> None:
    reg = registry(("g1", "s", "gas"))
    ev = ThresholdEvaluator(ThresholdRule.model_validate(rule), reg)
    got = []
    for t, v in rows:  # one reading per batch, as they arrive
        got += [(s.ts, int(s.level)) for s in ev.evaluate(batch(reg, [("g1", t, v)]), reg)]
    assert got == expected


def test_batch_is_vectorized_across_sensors_and_matches_one_by_one() -> None:
    reg = registry(*[(f"g{i}", "s", "gas") for i in range(50)])
    rule = ThresholdRule.model_validate({**HIGH, "deadband": 1, "on_delay_s": 2})
    rows = [(f"g{i}", float(t), float((i * 7 + t * 13) % 60)) for t in range(20) for i in range(50)]
    together = ThresholdEvaluator(rule, reg)
    signals_together = together.evaluate(batch(reg, rows), reg)
    single = ThresholdEvaluator(rule, reg)
    signals_single = [s for r in rows for s in single.evaluate(batch(reg, [r]), reg)]
    key = lambda s: (s.sensor, s.ts, s.level)  # noqa: E731
    assert sorted(map(key, signals_together)) == sorted(map(key, signals_single))
    assert len(signals_single) > 50


def test_override_by_sensor_beats_site_beats_kind() -> None:
    reg = registry(("a", "s1", "gas"), ("b", "s1", "gas"), ("c", "s2", "gas"))
    rule = ThresholdRule.model_validate(
        {
            **HIGH,
            "overrides": [
                {"selector": {"sensor": "a"}, "levels": {4: 1}},
                {"selector": {"site": "s1"}, "levels": {4: 5}},
            ],
        }
    )
    ev = ThresholdEvaluator(rule, reg)
    signals = ev.evaluate(batch(reg, [("a", 0, 2), ("b", 0, 6), ("c", 0, 6)]), reg)
    assert sorted((s.sensor, int(s.level)) for s in signals) == [("a", 4), ("b", 4)]


def test_live_reconfigure_keeps_state() -> None:
    reg = registry(("g1", "s", "gas"))
    ev = ThresholdEvaluator(ThresholdRule.model_validate(HIGH), reg)
    assert [int(s.level) for s in ev.evaluate(batch(reg, [("g1", 0, 12)]), reg)] == [4]
    ev.configure(ThresholdRule.model_validate({**HIGH, "levels": {4: 20, 3: 25}}), reg)
    # still blue-active: a reading of 12 is now below blue, so the alert clears
    assert [int(s.level) for s in ev.evaluate(batch(reg, [("g1", 1, 12)]), reg)] == [0]


@pytest.mark.parametrize(
    ("levels", "direction"),
    [({4: 10, 3: 5}, "high"), ({1: 2, 2: 1}, "low")],
    ids=["high_not_decreasing", "low_not_increasing"],
)
def test_bad_level_order_is_rejected(levels: dict[int, float], direction: str) -> None:
    with pytest.raises(ValueError, match="levels must"):
        ThresholdRule.model_validate({**HIGH, "levels": levels, "direction": direction})
