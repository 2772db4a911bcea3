"""Composite rules: AND/OR/NOT over other rules on one site."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from monitor.model import Sensor
from rules.spec import RULES_ADAPTER
from tests.unit.count_helpers import engine
from tests.unit.factories import batch

RULES = [
    {
        "id": "rain.24h",
        "type": "window",
        "selector": {"kind": "rainfall"},
        "window_s": 86400,
        "agg": "sum",
        "levels": {4: 25, 3: 50, 2: 100, 1: 250},
    },
    {
        "id": "pond.high",
        "type": "threshold",
        "selector": {"kind": "pond_water_level"},
        "levels": {3: 100.0, 2: 101.0, 1: 102.0},
    },
    {
        "id": "phreatic.low",
        "type": "threshold",
        "selector": {"kind": "phreatic_depth"},
        "direction": "low",
        "levels": {1: 4.0, 2: 4.4, 3: 4.8, 4: 5.2},
    },
    {
        "id": "dam.flood",
        "type": "composite",
        "level": 1,
        "when": {
            "all": [
                {"rule": "rain.24h", "at": 3},
                {"rule": "pond.high", "at": 3},
                {"rule": "phreatic.low", "at": 3},
            ]
        },
    },
    {
        "id": "dam.odd",
        "type": "composite",
        "level": 4,
        "when": {"all": [{"rule": "pond.high", "at": 3}, {"not": {"any": [{"rule": "rain.24h"}]}}]},
    },
]
SENSORS = [
    Sensor("rg", "dam", "rainfall", "mm"),
    Sensor("pl", "dam", "pond_water_level", "m"),
    Sensor("pz", "dam", "phreatic_depth", "m"),
    Sensor("rg2", "dam2", "rainfall", "mm"),
]


def test_all_three_conditions_raise_the_site_and_clear_when_one_goes() -> None:
    eng = engine(RULES, SENSORS)
    reg = eng.registry
    steps = [
        [("pl", 0.0, 100.5)],  # pond over control level, no rain: the NOT rule holds
        [("rg", 1.0, 30), ("rg", 2.0, 25)],  # 55 mm/24 h: yellow rain; phreatic still fine
        [("pz", 3.0, 4.7)],  # phreatic <= 1.2 D: all three hold
        [("pl", 4.0, 99.0)],  # pond back under: composite clears
    ]
    got = []
    for rows in steps:
        for s in eng.evaluate(batch(reg, rows), 0):
            if s.rule.startswith("dam."):
                got.append((s.rule, s.site, int(s.level)))
    assert got == [
        ("dam.odd", "dam", 4),
        ("dam.odd", "dam", 0),
        ("dam.flood", "dam", 1),
        ("dam.flood", "dam", 0),
    ]


def test_bad_composite_names_the_field() -> None:
    with pytest.raises(ValidationError) as err:
        RULES_ADAPTER.validate_python(
            [{"id": "x", "type": "composite", "when": {"all": [{"rule": "a", "at": 7}]}}]
        )
    assert "at" in str(err.value)
