"""A ring's spans (running aggregates) against a plain scan of every reading kept."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.state import SensorTable
from rules.windows import BucketRing, rounds

FIELDS = {"s": "sum", "hi": "max", "lo": "min", "last": "last"}
SPANS = {"all": (5, 0), "closed": (5, 2), "now": (0, 0), "recent": (2, 0)}

# per reading: (row, gap in seconds after the row's previous reading, value)
readings = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.one_of(st.floats(0.5, 30.0), st.floats(30.0, 400.0)),
        st.floats(-50.0, 50.0, allow_nan=False).map(lambda v: round(v, 2)),
    ),
    min_size=1,
    max_size=120,
)


def _expected(
    history: list[tuple[float, float]], b: int, oldest: int, newest: int, how: str
) -> float:
    width = 10.0
    values = [v for t, v in history if b - oldest <= np.floor(t / width) <= b - newest]
    if how == "sum":
        return sum(values)
    if not values:
        return np.nan
    return max(values) if how == "max" else min(values)


@settings(max_examples=150, deadline=None)
@given(readings, st.integers(1, 6))
def test_spans_equal_a_scan_of_the_readings_in_them(
    data: list[tuple[int, float, float]], batch_size: int
) -> None:
    table = SensorTable({}, rows=3)
    ring = BucketRing(10.0, 6, dict(FIELDS), table, "r_", SPANS)
    clock = [0.0, 0.0, 0.0]
    stream = []
    for row, gap, value in data:
        clock[row] += gap
        stream.append((row, clock[row], value))
    history: dict[int, list[tuple[float, float]]] = {0: [], 1: [], 2: []}
    for start in range(0, len(stream), batch_size):
        chunk = stream[start : start + batch_size]
        rows = np.array([r for r, _, _ in chunk], np.int64)
        ts = np.array([t for _, t, _ in chunk])
        value = np.array([v for _, _, v in chunk])
        for part in rounds(rows, ts):
            r, t, v = rows[part], ts[part], value[part]
            ring.add(r, t, {"s": v, "hi": v, "lo": v, "last": v})
            b = ring.bucket_of(t)
            for i in range(r.shape[0]):
                history[int(r[i])].append((float(t[i]), float(v[i])))
            for span, (oldest, newest) in SPANS.items():
                for field in ("s", "hi", "lo"):
                    got = ring.span(r, b, span, field)
                    for i in range(r.shape[0]):
                        want = _expected(
                            history[int(r[i])], int(b[i]), oldest, newest, FIELDS[field]
                        )
                        assert np.isclose(got[i], want, equal_nan=True), (span, field)


def test_a_span_survives_a_snapshot_and_a_table_of_another_layout() -> None:
    table = SensorTable({}, rows=2)
    ring = BucketRing(10.0, 6, {"s": "sum"}, table, "r_", {"w": (5, 0)})
    rows, ts = np.array([0, 1]), np.array([5.0, 7.0])
    for k in range(8):
        ring.add(rows, ts + 10 * k, {"s": np.array([1.0, 2.0])})
        ring.span(rows, ring.bucket_of(ts + 10 * k), "w", "s")
    state = table.export(np.array([0, 1]))
    other = SensorTable({}, rows=0)
    moved = BucketRing(10.0, 6, {"s": "sum"}, other, "r_", {"w": (5, 0)})
    other.assign(np.array([0, 1]), 2)
    other.load(state)
    t = ts + 80
    moved.add(rows, t, {"s": np.array([1.0, 2.0])})
    # six buckets back to this one: six readings of each sensor
    np.testing.assert_allclose(moved.span(rows, moved.bucket_of(t), "w", "s"), [6.0, 12.0])


def test_a_span_outside_the_ring_is_refused() -> None:
    with pytest.raises(ValueError, match="within the ring's 4 buckets"):
        BucketRing(10.0, 4, {"s": "sum"}, SensorTable({}), "r_", {"w": (4, 0)})
