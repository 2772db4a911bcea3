"""The one per-sensor state store (``rules.state.SensorTable``), property-based: a sensor's
state follows it through any change of the set of sensors held, snapshots carry exactly the
sensors held, and a column of another resolution starts empty."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from rules.state import Column, SensorTable

KEYS = st.sets(st.integers(0, 40), max_size=25).map(lambda s: np.array(sorted(s), np.int64))


def table(keys: np.ndarray) -> SensorTable:
    t = SensorTable({"x": Column(np.nan), "ring": Column(0, np.int64, (3,)),
                     "model": Column(None, object)})  # fmt: skip
    t.assign(keys, 50)
    t["x"][:] = keys * 1.5
    t["ring"][:] = keys[:, None] * np.arange(3)
    t["model"][:] = [{"key": int(k)} for k in keys]
    return t


@given(KEYS, KEYS)
def test_a_kept_sensor_keeps_its_state_and_a_new_one_starts_empty(
    a: np.ndarray, b: np.ndarray
) -> None:
    t = table(a)
    new = t.assign(b, 50)
    assert list(t.keys) == list(b)
    for row, key in enumerate(b.tolist()):
        if key in a:
            assert not new[row]
            assert t["x"][row] == key * 1.5 and t["model"][row] == {"key": key}
            assert list(t["ring"][row]) == [key * i for i in range(3)]
        else:
            assert new[row] and np.isnan(t["x"][row]) and t["model"][row] is None
    held, rows = t.rows(np.arange(60))
    assert list(np.flatnonzero(held)) == list(b)
    assert all(t.row_of(k) == r for k, r in zip(range(60), rows.tolist(), strict=True))


@given(KEYS, KEYS, KEYS)
def test_a_snapshot_carries_the_sensors_held_and_restores_into_another_layout(
    a: np.ndarray, asked: np.ndarray, other: np.ndarray
) -> None:
    state = table(a).export(asked)
    assert set(state["keys"].tolist()) == set(a.tolist()) & set(asked.tolist())
    assert state["x"].shape[0] == state["keys"].shape[0]  # no padding to the keys asked
    restored = SensorTable({"x": Column(np.nan), "ring": Column(0, np.int64, (3,)),
                            "model": Column(None, object)})  # fmt: skip
    restored.assign(other, 50)
    restored.load(state)
    for row, key in enumerate(other.tolist()):
        if key in state["keys"]:
            assert restored["x"][row] == key * 1.5 and restored["model"][row] == {"key": key}
        else:
            assert np.isnan(restored["x"][row]) and restored["model"][row] is None


def test_a_column_of_another_resolution_starts_empty_and_the_rest_is_kept() -> None:
    t = table(np.array([1, 4]))
    t.define({"ring": Column(0, np.int64, (3,), tag=60.0)})  # another bucket width
    assert not t["ring"].any() and list(t["x"]) == [1.5, 6.0]
    saved = t.export(np.array([1, 4]))
    t.define({"ring": Column(0, np.int64, (5,))})  # another size: the old snapshot is skipped
    t.load(saved)
    assert t["ring"].shape == (2, 5) and not t["ring"].any()
    assert t.nbytes == sum(a.nbytes for a in t.data.values())


def test_newer_readings_only_and_one_of_each_resend() -> None:
    t = SensorTable({"seen": Column(-np.inf)})
    t.assign(np.array([0, 1]), 2)
    rows, ts = np.array([0, 0, 1, 1]), np.array([5.0, 5.0, 3.0, 4.0])
    assert list(t.fresh(rows, ts)) == [True, False, True, True]
    t.judged(rows, ts)
    assert list(t["seen"]) == [5.0, 4.0]
    assert list(t.fresh(np.array([0, 1]), np.array([5.0, 4.5]))) == [False, True]
