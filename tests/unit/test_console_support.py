"""The console's pure helpers and settings: which sensors report, district outlines, the time
zone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from monitor import districts
from monitor.config import Settings
from monitor.freshness import Freshness

SQUARE = [[[117.0, 31.0], [117.1, 31.0], [117.1, 31.1], [117.0, 31.0]]]


def test_a_sensor_reports_while_its_newest_reading_is_within_three_intervals() -> None:
    f = Freshness()
    f.seen(np.array([1, 2, 1], np.int32), np.array([100.0, 50.0, 90.0]))
    keys = np.array([1, 2, 3, 40], np.int32)  # 3 and 40 never reported (40: beyond the arrays)
    interval = np.array([60.0, 10.0, 60.0, 60.0])  # each key's own
    at = f.summary(keys, interval, now=200.0)
    assert (at.sensors, at.reporting, at.last_received) == (4, 1, 100.0)  # 2: 150 s > 60 s
    # an unknown interval counts as 60 s: 100 s old is within its 180 s, 300 s old is not
    assert f.summary(keys[:1], np.array([np.nan]), now=200.0).reporting == 1
    assert f.summary(keys[:1], np.array([np.nan]), now=400.0).reporting == 0
    assert f.summary(np.array([], np.int32), np.array([]), 0.0).last_received is None


@given(st.lists(st.tuples(st.integers(0, 50), st.floats(0, 1e6)), min_size=1, max_size=200))
def test_one_batch_or_reading_by_reading_gives_the_same_newest_arrivals(
    readings: list[tuple[int, float]],
) -> None:
    keys = np.array([k for k, _ in readings], np.int32)
    received = np.array([r for _, r in readings])
    whole, single = Freshness(), Freshness()
    whole.seen(keys, received)
    for k, r in readings:
        single.seen(np.array([k], np.int32), np.array([r]))
    n = min(len(whole.last_rx), len(single.last_rx))
    assert np.array_equal(whole.last_rx[:n], single.last_rx[:n], equal_nan=True)
    for k in set(keys.tolist()):
        assert whole.last_rx[k] == received[keys == k].max()


def test_district_outlines_are_checked_with_a_one_line_reason(tmp_path: Path) -> None:
    good = tmp_path / "good.geojson"
    good.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": SQUARE}}]}))  # fmt: skip
    assert districts.read(good)["features"][0]["geometry"]["type"] == "Polygon"
    assert Settings(console_districts=good).console_districts == good
    bad = {
        "not-json.geojson": "{",
        "point.geojson": json.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [117, 31]}}]}),
        "list.geojson": "[]",
    }  # fmt: skip
    for name, body in bad.items():
        (tmp_path / name).write_text(body)
        with pytest.raises(ValidationError, match="RISKMON_CONSOLE_DISTRICTS") as err:
            Settings(console_districts=tmp_path / name)
        assert "\n" not in str(err.value.errors()[0]["msg"])
    with pytest.raises(ValidationError, match="cannot read"):
        Settings(console_districts=tmp_path / "missing.geojson")


def test_the_console_time_zone_must_be_a_real_zone() -> None:
    assert Settings().console_time_zone == "Asia/Shanghai"
    assert Settings(console_time_zone="Europe/Berlin").console_time_zone == "Europe/Berlin"
    with pytest.raises(ValidationError, match="no IANA time zone"):
        Settings(console_time_zone="Mars/Olympus")
