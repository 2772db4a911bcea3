"""The normalizer: pure, never raises, keeps valid readings, says why it rejects."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.normalize import normalize
from ingest.raw import RawMessage, parse_topic
from tests.unit.factories import registry

REG = registry(("a", "s1", "gas"), ("b", "s2", "gas"))
NOW = 1_750_000_000.0


def msg(payload: bytes, site: str | None = "s1", tenant: str | None = "t-s1") -> RawMessage:
    return RawMessage(payload, "test", NOW, topic="t", tenant=tenant, site=site)


def test_timestamp_forms_are_equal() -> None:
    payload = json.dumps(
        [
            {"sensor": "a", "ts": NOW, "value": 1},
            {"sensor": "a", "ts": int(NOW * 1000) + 1, "value": 2},
            {"sensor": "a", "ts": "2025-06-15T15:06:40.002+00:00", "value": 3},
            {"sensor": "a", "ts": "2025-06-15T15:06:40.003Z", "value": 4, "quality": 192},
        ]
    ).encode()
    batch, rejects = normalize(msg(payload), REG)
    assert rejects == []
    assert np.allclose(batch.ts - NOW, [0, 0.001, 0.002, 0.003], atol=1e-6)
    assert batch.quality.tolist() == [0, 0, 0, 192]


def test_site_checks_only_apply_with_a_topic() -> None:
    payload = json.dumps({"sensor": "b", "ts": NOW, "value": 1}).encode()
    _, rejects = normalize(msg(payload), REG)
    assert [r.reason for r in rejects] == ["wrong_site"]
    batch, rejects = normalize(msg(payload, site=None, tenant=None), REG)
    assert len(batch) == 1 and rejects == []


def test_topic_parsing() -> None:
    assert parse_topic("riskmon/v1/acme/tf-01/readings") == ("acme", "tf-01")
    assert parse_topic("riskmon/v1/acme/tf-01/other") is None
    assert parse_topic("riskmon/v2/acme/tf-01/readings") is None
    assert parse_topic("riskmon/v1//tf-01/readings") is None


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=10,
)
reading = st.fixed_dictionaries(
    {},
    optional={
        "sensor": st.sampled_from(["a", "b", "zz", ""]) | json_values,
        "ts": st.floats(min_value=-1e13, max_value=1e13) | st.text(max_size=30) | json_values,
        "value": st.floats(allow_nan=True, allow_infinity=True) | json_values,
        "quality": st.integers() | json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(reading | json_values, max_size=8))
def test_never_raises_and_accounts_for_every_item(items: list[object]) -> None:
    payload = json.dumps(items).encode()
    batch, rejects = normalize(msg(payload), REG)
    if not items:
        assert [r.reason for r in rejects] == ["empty_batch"]
        return
    assert len(batch) + len(rejects) == len(items)
    assert np.isfinite(batch.value).all()
    assert (batch.ts <= NOW + 300).all()
    assert all(r.reason for r in rejects)


@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_raise(payload: bytes) -> None:
    batch, rejects = normalize(msg(payload), REG)
    assert len(batch) + len(rejects) >= 1 or payload.strip() == b""


def _expected_reason(item: object) -> str:
    """An oracle written plainly, one item at a time (seconds only: no ms or ISO forms)."""
    if not isinstance(item, dict):
        return "reading_not_object"
    sensor = item.get("sensor")
    if not isinstance(sensor, str) or not sensor:
        return "missing_sensor"
    if sensor not in ("a", "b"):
        return "unknown_sensor"
    v = item.get("value")
    if v is None:
        return "missing_value"
    if isinstance(v, bool) or not isinstance(v, int | float):
        return "value_not_number"
    q = item.get("quality", 0)
    if isinstance(q, bool) or not isinstance(q, int) or not -32768 <= q <= 32767:
        return "bad_quality"
    if not np.isfinite(float(v)):
        return "value_not_finite"
    if item["ts"] > NOW + 300:
        return "ts_in_future"
    if item["ts"] < 946_684_800:
        return "ts_out_of_range"
    return "wrong_site" if sensor == "b" else ""


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        reading.map(lambda r: {**r, "ts": NOW + 400})
        | reading.map(lambda r: {**r, "ts": NOW})
        | reading.map(lambda r: {**r, "ts": 1e8})
        | json_values,
        max_size=8,
    )
)
def test_each_item_gets_the_first_failing_reason_in_order_and_keeps_its_value(
    items: list[object],
) -> None:
    """Rejects come in item order with the first check that fails; kept readings keep their
    item order, value and quality."""
    batch, rejects = normalize(msg(json.dumps(items).encode()), REG)
    if not items:
        return
    reasons = [_expected_reason(i) for i in items]
    assert [r.reason for r in rejects] == [r for r in reasons if r]
    kept = [i for i, r in zip(items, reasons, strict=True) if not r]
    assert batch.value.tolist() == [float(i["value"]) for i in kept]  # type: ignore[index]
    assert batch.quality.tolist() == [i.get("quality", 0) for i in kept]  # type: ignore[union-attr]
