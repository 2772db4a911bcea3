"""The pipeline's in-batch duplicate drop and event-time order, against a plain reference."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.model import ReadingBatch
from monitor.pipeline import dedupe_and_sort

# (sensor, ts, value): few sensors and times, so resends and ties are common; a time can
# differ from another by less than a microsecond (the same reading) or by a little more
items = st.lists(
    st.tuples(
        st.integers(0, 4),
        st.sampled_from([100.0, 100.0000004, 100.000002, 130.0, 160.0, 1.7e9, 1.7e9 + 1e-7]),
        st.floats(-10, 10, allow_nan=False),
    ),
    max_size=60,
)


def reference(rows: list[tuple[int, float, float]]) -> list[tuple[int, float, float]]:
    """Keep the first reading of each (sensor, time to the microsecond), in arrival order,
    then order by event time (ties in arrival order)."""
    seen, kept = set(), []
    for sensor, ts, value in rows:
        key = (sensor, round(ts * 1e6))
        if key not in seen:
            seen.add(key)
            kept.append((sensor, ts, value))
    return sorted(kept, key=lambda r: r[1])


@settings(max_examples=300, deadline=None)
@given(items)
def test_the_first_of_each_resend_is_kept_in_event_time_order(
    rows: list[tuple[int, float, float]],
) -> None:
    n = len(rows)
    batch = ReadingBatch(
        np.array([r[0] for r in rows], np.int32),
        np.array([r[1] for r in rows], np.float64),
        np.array([r[2] for r in rows], np.float64),
        np.zeros(n, np.int16),
        np.arange(n, dtype=np.float64),
    )
    out = dedupe_and_sort(batch)
    got = list(zip(out.sensor.tolist(), out.ts.tolist(), out.value.tolist(), strict=True))
    assert got == reference(rows)
