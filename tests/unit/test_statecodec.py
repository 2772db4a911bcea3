"""The rule-state snapshot encoding: any arrays round-trip; what is not an encoding is refused
in one line."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rules.engine import RuleEngine
from rules.errors import RuleError
from rules.statecodec import StateFormatError, decode_state, encode_state
from tests.unit.factories import registry

DTYPES = st.one_of(
    hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.boolean_dtypes(),
    hnp.unicode_string_dtypes(max_len=6),
)  # fmt: skip
ARRAYS = hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))


@given(st.dictionaries(st.text(min_size=1, max_size=12), ARRAYS, max_size=6), st.booleans())
def test_any_arrays_round_trip(arrays: dict[str, np.ndarray], strided: bool):
    if strided:  # views that are not contiguous (a column of a table) are encoded as values
        arrays = {k: v[::-1] if v.ndim else v for k, v in arrays.items()}
    decoded = decode_state(encode_state(arrays))
    assert list(decoded) == list(arrays)
    for name, values in arrays.items():
        got = decoded[name]
        assert got.dtype == values.dtype and got.shape == values.shape
        np.testing.assert_array_equal(got, values)
        assert got.flags.writeable


def test_objects_are_refused():
    with pytest.raises(StateFormatError, match="'x' holds Python objects"):
        encode_state({"x": np.array([{"a": 1}], object)})


@pytest.mark.parametrize(
    "data",
    [b"", b"RMS1", b"RMS1\xff\xff\xff\xffgarbage", b"PK\x03\x04 broken zip", b"not a state"],
)
def test_what_is_not_a_state_is_refused_in_one_line(data: bytes):
    with pytest.raises(StateFormatError) as caught:
        decode_state(data)
    assert "\n" not in str(caught.value)


def test_a_cut_or_padded_state_is_refused():
    good = encode_state({"keys": np.arange(10), "a|b": np.ones((10, 3))})
    for bad in (good[:-3], good[:12] + good[20:]):
        with pytest.raises(StateFormatError):
            decode_state(bad)


def test_the_engine_says_a_bad_snapshot_is_not_one():
    engine = RuleEngine(registry(("s-1", "site", "gas_combustible")), now=0.0)
    with pytest.raises(RuleError, match="not an encoded rule state"):
        engine.import_state(b"RMS1 nonsense", now=0.0)
    with pytest.raises(RuleError, match="no sensor keys"):
        engine.import_state(encode_state({"a|b": np.ones(2)}), now=0.0)
