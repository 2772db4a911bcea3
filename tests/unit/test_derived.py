"""Rate-of-change and rolling-window rules: table-driven edges."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.derived import DerivedEvaluator
from rules.spec import RateRule, WindowRule
from tests.unit.factories import batch, registry

DAY, HOUR = 86_400.0, 3_600.0
# displacement rate in mm/d over one day: blue > 2, yellow > 5, orange > 10 (DOMAIN 2.2)
RATE: dict[str, Any] = {
    "id": "disp.rate",
    "type": "rate",
    "span_s": DAY,
    "per_s": DAY,
    "levels": {4: 2, 3: 5, 2: 10},
}
# 24 h rainfall: blue >= 25, yellow >= 50, orange >= 100, red >= 250
RAIN: dict[str, Any] = {
    "id": "rain.24h",
    "type": "window",
    "window_s": DAY,
    "agg": "sum",
    "levels": {4: 25, 3: 50, 2: 100, 1: 250},
}

CASES = [
    # (id, rule, [(t, value)], expected [(t, level)])
    ("rate_needs_half_the_span", RATE, [(0, 0), (0.49 * DAY, 10)], []),
    ("rate_exactly_on_blue", RATE, [(0, 0), (DAY, 2)], [(DAY, 4)]),
    ("rate_just_below_blue", RATE, [(0, 0), (DAY, 1.99)], []),
    ("rate_orange", RATE, [(0, 0), (0.5 * DAY, 5)], [(0.5 * DAY, 2)]),  # 10 mm/d
    (
        "rate_uses_value_a_span_ago",
        RATE,
        [(0, 0), (DAY, 1), (2 * DAY, 7)],
        [(2 * DAY, 3)],
    ),  # 6 mm over the last day
    (
        "rate_clears_when_creep_stops",
        RATE,
        [(0, 0), (DAY, 6), (2 * DAY, 6.5), (3 * DAY, 6.6)],
        [(DAY, 3), (2 * DAY, 0)],
    ),
    ("rain_sum_exactly_on_yellow", RAIN, [(0, 20), (HOUR, 30)], [(HOUR, 3)]),
    ("rain_below_blue", RAIN, [(0, 10), (HOUR, 14.9)], []),
    # the window covers whole 15-min buckets (96 in 24 h): 30 mm at t=0 leaves it when its
    # bucket does, at DAY + 15 min, not at DAY + 1 s (a resolution the README documents)
    ("rain_window_slides", RAIN, [(0, 30), (HOUR, 0), (DAY + 900, 0)], [(0, 4), (DAY + 900, 0)]),
    ("rain_window_keeps_its_last_bucket", RAIN, [(0, 30), (HOUR, 0), (DAY + 1, 0)], [(0, 4)]),
    (
        "rain_storm_escalates",
        RAIN,
        [(0, 60), (HOUR, 50), (2 * HOUR, 150)],
        [(0, 3), (HOUR, 2), (2 * HOUR, 1)],
    ),
    ("late_reading_ignored", RAIN, [(HOUR, 10), (0, 100)], []),
]


@pytest.mark.parametrize(
    ("rule", "rows", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_derived_edges(
    rule: dict[str, Any], rows: list[tuple[float, float]], expected: list[tuple[float, int]]
) -> None:
    reg = registry(("p1", "s", "x"))
    spec = (RateRule if rule["type"] == "rate" else WindowRule).model_validate(
        {**rule, "selector": {"kind": "x"}}
    )
    ev = DerivedEvaluator(spec, reg)
    got = []
    for t, v in rows:
        got += [(s.ts, int(s.level)) for s in ev.evaluate(batch(reg, [("p1", t, v)]), reg)]
    assert got == expected


def test_pressure_drop_rate_low_direction() -> None:
    reg = registry(("pp", "s", "pipe_pressure"))
    rule = RateRule.model_validate(
        {
            "id": "drop",
            "span_s": 60,
            "per_s": 60,
            "direction": "low",
            "levels": {3: -20, 2: -50},
            "selector": {"kind": "pipe_pressure"},
        }
    )
    ev = DerivedEvaluator(rule, reg)
    rows = [
        ("pp", float(t), 350.0 - (0 if t < 120 else (t - 120) * 1.0)) for t in range(0, 200, 10)
    ]
    signals = ev.evaluate(batch(reg, rows), reg)
    assert [(s.ts, int(s.level)) for s in signals] == [
        (140.0, 3),
        (170.0, 2),
    ]  # -20/min at 140, -50/min at 170


def test_state_round_trip_keeps_history() -> None:
    reg = registry(("p1", "s", "x"))
    spec = WindowRule.model_validate({**RAIN, "selector": {"kind": "x"}})
    a = DerivedEvaluator(spec, reg)
    a.evaluate(batch(reg, [("p1", 0, 20), ("p1", 10, 20)]), reg)
    keys = np.array([1])
    b = DerivedEvaluator(spec, reg)
    b.import_state(keys, a.export_state(keys))
    # 40 mm so far; 10 more reaches 50 (yellow) only if the history survived
    assert [int(s.level) for s in b.evaluate(batch(reg, [("p1", 20, 10)]), reg)] == [3]


@given(
    st.lists(
        st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), min_size=5, max_size=5),
        min_size=1,
        max_size=20,
    )
)
def test_the_row_median_is_numpys(rows: list[list[float]]) -> None:
    import warnings

    from rules.derived import nanmedian_rows

    x = np.array(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy warns on an all-NaN row
        expected = np.nanmedian(x, axis=1)
    np.testing.assert_array_equal(nanmedian_rows(x), expected)
