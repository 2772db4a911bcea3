"""Count escalation (tailings) and corroboration (gas) over the engine."""

from __future__ import annotations

from monitor.model import Sensor
from tests.unit.count_helpers import engine
from tests.unit.factories import batch

TAILINGS = [
    {
        "id": "phreatic.low",
        "type": "threshold",
        "selector": {"kind": "phreatic_depth"},
        "direction": "low",
        "levels": {1: 4.0, 2: 4.4, 3: 4.8, 4: 5.2},
    },
    {
        "id": "tailings.count",
        "type": "count",
        "sources": ["phreatic.low"],
        "group_by": "kind",
        "steps": [
            {"at": 4, "count": 4, "to": 3},
            {"at": 3, "count": 3, "to": 2},
            {"at": 2, "count": 2, "to": 1},
        ],
    },
]


def test_tailings_item_escalates_by_count_naming_points() -> None:
    points = [Sensor(f"pz{i}", "dam1", "phreatic_depth", "m") for i in range(1, 6)]
    eng = engine(TAILINGS, points)
    steps = [
        [("pz1", 5.1), ("pz2", 5.1), ("pz3", 5.1)],  # three at blue: no count yet
        [("pz4", 5.0)],  # the fourth at blue -> item yellow
        [("pz1", 4.7), ("pz2", 4.7), ("pz3", 4.6)],  # three at yellow -> orange
        [("pz1", 4.3), ("pz2", 4.2)],  # two at orange -> red
        [("pz1", 5.5), ("pz2", 5.5), ("pz3", 5.5), ("pz4", 5.5)],  # all clear
    ]
    got = []
    for t, rows in enumerate(steps):
        signals = eng.evaluate(batch(eng.registry, [(s, float(t), v) for s, v in rows]), t)
        got += [
            (int(s.level), sorted(s.evidence.get("points", [])))
            for s in signals
            if s.rule == "tailings.count"
        ]
    assert got == [
        (3, ["pz1", "pz2", "pz3", "pz4"]),
        (2, ["pz1", "pz2", "pz3"]),
        (1, ["pz1", "pz2"]),
        (0, []),
    ]
    assert all(s.item == "dam1/phreatic_depth" for s in signals if s.rule == "tailings.count")


def test_across_items_four_blue_items_make_the_site_yellow() -> None:
    kinds = ["phreatic_depth", "freeboard", "dry_beach_length", "surface_displacement"]
    sensors = [Sensor(f"{k}-1", "dam1", k, "m") for k in kinds]
    rules = [
        {
            "id": f"{k}.low",
            "type": "threshold",
            "selector": {"kind": k},
            "direction": "low",
            "levels": {4: 10.0},
        }
        for k in kinds
    ]
    rules.append(
        {
            "id": "dam.count",
            "type": "count",
            "sources": [f"{k}.low" for k in kinds],
            "steps": [{"at": 4, "count": 4, "to": 3}],
            "items_step": {"at": 4, "count": 4, "to": 3},
        }
    )
    eng = engine(rules, sensors)
    signals = eng.evaluate(batch(eng.registry, [(f"{k}-1", 1.0, 5.0) for k in kinds]), 1)
    site = [s for s in signals if s.rule == "dam.count" and s.item is None]
    assert [(s.site, int(s.level)) for s in site] == [("dam1", 3)]
    assert len(site[0].evidence["items"]) == 4


def test_two_detectors_in_one_area_at_orange_make_red() -> None:
    sensors = [
        Sensor("g1", "tf", "gas_combustible", "%LEL", tags=("area:a",)),
        Sensor("g2", "tf", "gas_combustible", "%LEL", tags=("area:a",)),
        Sensor("g3", "tf", "gas_combustible", "%LEL", tags=("area:b",)),
    ]
    rules = [
        {
            "id": "gas.high",
            "type": "threshold",
            "selector": {"kind": "gas_combustible"},
            "levels": {4: 10, 3: 25, 2: 50},
        },
        {
            "id": "gas.corroborated",
            "type": "count",
            "sources": ["gas.high"],
            "group_by": "tag",
            "tag_prefix": "area:",
            "steps": [{"at": 2, "count": 2, "to": 1}],
        },
    ]
    eng = engine(rules, sensors)
    one = eng.evaluate(batch(eng.registry, [("g1", 1.0, 55), ("g3", 1.0, 60)]), 1)
    assert [s for s in one if s.rule == "gas.corroborated"] == []  # different areas
    two = eng.evaluate(batch(eng.registry, [("g2", 2.0, 52)]), 2)
    red = [s for s in two if s.rule == "gas.corroborated"]
    assert [(s.item, int(s.level), sorted(s.evidence["points"])) for s in red] == [
        ("tf/area:a", 1, ["g1", "g2"])
    ]
