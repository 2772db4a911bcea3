"""The risk model, table-driven: each factor moves the level the documented way, and the
explanation names it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.model import Alert
from alerts.risk import History, RiskModel, RiskModels, assess, roll_up
from monitor.model import Category, Level, Site, SiteKind

NOW = 1_750_000_000.0


def site(grade: int | None, kind: SiteKind = SiteKind.MAJOR_HAZARD_SOURCE) -> Site:
    return Site("tf", "Tank farm", "acme", kind, grade)


def alert(
    level: int, category: Category = Category.PROCESS, sensor: str = "g1", tier: int = 0,
    opened: float = NOW - 600, active: bool = True, on: str = "tf",
) -> Alert:  # fmt: skip
    return Alert(
        f"a-{sensor}-{level}-{category}", f"r|{sensor}", "r", sensor, on, category, Level(level),
        Level(level), opened, opened, active=active, tier=tier,
    )  # fmt: skip


CASES = [
    # (grade, alerts, sensors, history, level, factor named)
    (1, [], 10, History(), 4, "no active process warning"),
    (1, [alert(3)], 10, History(), 2, "grade 1 with a yellow warning gives 较大 orange"),
    (4, [alert(3)], 10, History(), 4, "grade 4 with a yellow warning gives 低 blue"),
    (1, [alert(2)], 10, History(), 1, "grade 1 with a orange warning gives 重大 red"),
    (4, [alert(1)], 10, History(), 1, "a red warning gives 重大 red"),
    (3, [alert(4), alert(2, sensor="g2")], 10, History(), 2, "a orange warning"),
    (None, [], 10, History(), 4, "none recorded: taken as 3"),
    (None, [alert(3)], 10, History(), 3, "grade 3 with a yellow warning"),
    # blind monitoring: 3 of 10 sensors offline or in fault raise it one level
    (3, [alert(1, Category.DATA_INTERRUPTION, s) for s in ("p1", "p2", "p3")], 10, History(),
     3, "3 of 10 sensors offline, stuck or in fault"),
    (3, [alert(1, Category.SENSOR_HEALTH, "p1"), alert(1, Category.SENSOR_HEALTH, "p1")], 10,
     History(), 4, "no active process warning"),  # one sensor, twice: 10 %
    # an overdue disposal raises it one level
    (2, [alert(3, tier=1)], 10, History(), 1, "not disposed in time (escalated to tier 1)"),
    # real hazards in the last week raise it one level
    (2, [], 10, History(real_hazards_7d=1, real_hazards_30d=1), 3, "1 real hazard(s) handled"),
    # at most two levels over the base
    (4, [alert(4, tier=1), *(alert(1, Category.DATA_INTERRUPTION, f"p{i}") for i in range(5))],
     10, History(real_hazards_7d=2), 2, "raised at most 2 levels"),
    # cleared, closed-but-active elsewhere, and other sites' alerts do not count
    (1, [alert(1, active=False), alert(1, on="other")], 10, History(), 4, "no active process"),
]  # fmt: skip


@pytest.mark.parametrize(("grade", "alerts", "sensors", "history", "level", "words"), CASES)
def test_each_factor_moves_the_level_and_is_named(
    grade: int | None, alerts: list[Alert], sensors: int, history: History, level: int, words: str
) -> None:
    risk = assess(site(grade), alerts, sensors, history, NOW)
    assert risk.level == level, risk.factors
    assert any(words in f.words for f in risk.factors), [f.words for f in risk.factors]
    low, high = {1: (75, 100), 2: (50, 75), 3: (25, 50), 4: (0, 25)}[level]
    assert low <= risk.score < high
    assert risk.as_dict()["level_name"].endswith(("red", "orange", "yellow", "blue"))


def test_the_score_orders_sites_of_one_level_by_warnings_age_and_history() -> None:
    fresh = assess(site(1), [alert(3, opened=NOW - 60)], 10, History(), NOW)
    old = assess(site(1), [alert(3, opened=NOW - 20 * 3600)], 10, History(), NOW)
    many = assess(site(1), [alert(3, sensor=f"g{i}") for i in range(3)], 10, History(), NOW)
    busy = assess(site(1), [alert(3, opened=NOW - 60)], 10, History(warnings_30d=6), NOW)
    assert fresh.level == old.level == many.level == busy.level == 2
    assert fresh.score < old.score and fresh.score < many.score and fresh.score < busy.score


def test_weights_are_per_site_kind() -> None:
    strict = RiskModel(matrix=((1, 1, 1, 2, 3),) * 4)
    models = RiskModels(by_kind={SiteKind.TAILINGS_DAM: strict})
    dam = site(4, SiteKind.TAILINGS_DAM)
    assert assess(dam, [], 10, History(), NOW, models).level == 3
    assert assess(site(4), [], 10, History(), NOW, models).level == 4


@given(
    st.integers(1, 4), st.lists(st.integers(1, 4), max_size=4), st.integers(0, 10),
    st.integers(0, 3), st.booleans(),
)  # fmt: skip
def test_more_evidence_never_lowers_the_risk(
    grade: int, levels: list[int], blind: int, hazards: int, overdue: bool
) -> None:
    """Adding a warning, a blind sensor, a real hazard or an overdue tier never lowers it."""
    alerts = [alert(lv, sensor=f"g{i}") for i, lv in enumerate(levels)]
    alerts += [alert(1, Category.DATA_INTERRUPTION, f"p{i}") for i in range(blind)]
    base = assess(site(grade), alerts, 10, History(real_hazards_7d=hazards), NOW)
    more = [
        [*alerts, alert(3, sensor="new")],
        [*alerts, alert(1, Category.SENSOR_HEALTH, "q")],
        [*alerts, alert(4, sensor="late", tier=1 if overdue else 0)],
    ]
    for extra in more:
        assert (
            assess(site(grade), extra, 10, History(real_hazards_7d=hazards), NOW).level
            <= base.level
        )
    assert (
        assess(site(grade), alerts, 10, History(real_hazards_7d=hazards + 1), NOW).level
        <= base.level
    )


def test_roll_ups_give_the_worst_level_and_counts_per_level() -> None:
    a = assess(site(1), [alert(2)], 10, History(), NOW)  # red
    b = assess(Site("b", "B", "acme", SiteKind.MINE, 3), [], 5, History(), NOW)  # blue
    c = assess(Site("c", "C", "beta", SiteKind.MINE, 3), [alert(3, on="c")], 5, History(), NOW)
    ups = roll_up([(r.tenant, r) for r in (a, b, c)])
    assert [(u.key, u.level, u.sites, u.per_level) for u in ups] == [
        ("acme", 1, 2, {1: 1, 4: 1}),
        ("beta", 3, 1, {3: 1}),
    ]


def test_a_risk_change_is_told_once_it_has_held() -> None:
    from alerts.risk import Hold, hold_step

    state, due = hold_step(Hold(), {"a": 4, "b": 4}, 0.0, 300)
    assert due == []  # the baseline is never told
    state, due = hold_step(state, {"a": 2}, 10.0, 300)
    assert due == [] and state.pending == {"a": (2, 10.0)}
    state, due = hold_step(state, {"a": 2, "b": 3}, 200.0, 300)
    assert due == []  # a still held since 10; b just changed
    state, due = hold_step(state, {"b": 4}, 250.0, 300)
    assert "b" not in state.pending  # back to its told level before the hold: nothing told
    state, due = hold_step(state, {}, 310.0, 300)
    assert due == ["a"] and state.notified["a"] == 2
    state, due = hold_step(state, {"a": 1}, 320.0, 300)
    state, due = hold_step(state, {"a": 3}, 400.0, 300)  # moved again: the hold restarts
    assert state.pending == {"a": (3, 400.0)}
    state, due = hold_step(state, {}, 700.0, 300)
    assert due == ["a"] and state.notified["a"] == 3


def test_a_level_that_held_until_the_next_assessment_is_told_before_it() -> None:
    from alerts.risk import Hold, hold_step

    state, _ = hold_step(Hold(), {"a": 4}, 0.0, 20)
    state, due = hold_step(state, {"a": 2}, 30.0, 20)
    assert due == []
    state, due = hold_step(state, {"a": 1}, 60.0, 20)  # 2 held 30 s: told, then 1 pends
    assert due == ["a"] and state.notified["a"] == 2 and state.pending == {"a": (1, 60.0)}
    state, due = hold_step(Hold(), {"a": 4}, 0.0, 0)
    state, due = hold_step(state, {"a": 3}, 1.0, 0)  # no hold: at once
    assert due == ["a"]
