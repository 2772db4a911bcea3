"""Alarm-load KPIs (alerts.kpis): the ISA-18.2 / EEMUA 191 definitions on any alert history."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from alerts.kpis import RaisedAlert, alarm_load

T0 = 1_790_000_400.0  # a 10-minute boundary


def burst(n: int, at: float, sensor: str = "g-1", level: int = 4) -> list[RaisedAlert]:
    return [RaisedAlert(("r", sensor, "s"), level, at + i, at + i + 1) for i in range(n)]


def test_a_flood_starts_above_10_and_ends_below_5() -> None:
    # bins of 12, 6, 5, 4, 12 alerts: one flood over the first three bins, a second at the end
    alerts = []
    for k, n in enumerate((12, 6, 5, 4, 12)):
        alerts += burst(n, T0 + 600 * k, sensor=f"g-{k}")
    kpis = alarm_load(alerts, T0, T0 + 3000)
    assert [(f["from"] - T0, f["to"] - T0, f["alerts"]) for f in kpis["floods"]] == [
        (0, 1800, 23),
        (2400, 3000, 12),
    ]
    assert kpis["percent_time_in_flood"] == 100 * 2400 / 3000
    assert kpis["max_per_10_minutes"] == 12


def test_chattering_is_three_changes_in_a_minute() -> None:
    steady = RaisedAlert(("r", "a", "s"), 3, T0, T0 + 3600, (T0, T0 + 61, T0 + 122))
    chatty = RaisedAlert(("r", "b", "s"), 3, T0, T0 + 50, (T0, T0 + 20, T0 + 50))
    kpis = alarm_load([steady, chatty], T0, T0 + 86400)
    assert [(c["sensor"], c["changes_per_minute"]) for c in kpis["chattering"]] == [("b", 3)]


def test_stale_priority_and_bad_actors() -> None:
    alerts = [
        RaisedAlert(("r", "a", "s"), 1, T0, None),  # red, active for two days: stale
        *burst(3, T0, "b", level=4),
        RaisedAlert(("r", "c", "s"), 3, T0, T0 + 90000),  # cleared after 25 h: stale too
    ]
    kpis = alarm_load(alerts, T0, T0 + 2 * 86400, top=2)
    assert kpis["stale"] == 2
    assert kpis["priority"]["low"] == {"alerts": 3, "percent": 60.0}
    assert kpis["priority"]["high"]["alerts"] == 1
    assert kpis["bad_actors"] == [{"rule": "r", "sensor": "b", "site": "s", "alerts": 3},
                                  {"rule": "r", "sensor": "a", "site": "s", "alerts": 1}]  # fmt: skip


@given(
    st.lists(
        st.tuples(st.floats(0, 86399), st.integers(1, 4), st.sampled_from("abcde")), max_size=300
    )
)
def test_figures_add_up_on_any_history(rows: list[tuple[float, int, str]]) -> None:
    alerts = [RaisedAlert(("r", s, "x"), lv, T0 + t, T0 + t + 30, (T0 + t,)) for t, lv, s in rows]
    kpis = alarm_load(alerts, T0, T0 + 86400)
    assert sum(b["alerts"] for b in kpis["per_10_minutes"]) == kpis["alerts"] == len(rows)
    assert 0 <= kpis["percent_time_in_flood"] <= 100
    spans = [(f["from"], f["to"]) for f in kpis["floods"]]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    assert all(b["alerts"] > 10 for b in kpis["floods"])
    if rows:
        assert round(sum(p["percent"] for p in kpis["priority"].values()), 6) == 100
    assert sum(a["alerts"] for a in kpis["bad_actors"]) <= len(rows)
