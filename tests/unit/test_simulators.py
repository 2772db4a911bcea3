"""Simulator physics and fault injection: reproducible, and each fault does what it says."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.faults import KINDS, Fault, Injector
from simulators.physics import MODELS, build
from simulators.scenario import Scenario, seconds


def _run(model, hours: float, step: float = 600.0) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.array([model.step(t) for t in np.arange(0, hours * 3600, step)])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_are_seeded_and_reproducible(name: str) -> None:
    a, b, c = build(name, id="x", seed=1), build(name, id="x", seed=1), build(name, id="x", seed=2)
    ra, rb, rc = _run(a, 24), _run(b, 24), _run(c, 24)
    assert np.array_equal(ra, rb) and not np.array_equal(ra, rc)
    assert ra.shape[1] == len(a.sensors())


def test_tank_overfill_climbs_past_the_high_set_points() -> None:
    tank = build("tank", id="t")
    tank.hazard("overfill", at=6 * 3600)
    levels = _run(tank, 24, 60)[:, 0]
    assert levels[: 6 * 60].max() < 80 and levels.max() > 95


def test_dam_rain_raises_the_pond_and_the_phreatic_line_lags() -> None:
    dam = build("tailings_dam", id="d")
    dam.hazard("rain", at=3600, mm_per_h=30, hours=6)
    rows = _run(dam, 48)
    freeboard, pz1 = rows[:, 1], rows[:, 3]
    assert rows[:, 0].sum() > 100  # mm of rain
    assert freeboard.argmin() < pz1.argmin()  # the phreatic line follows later
    assert freeboard.min() < 1.3 and pz1.min() < 5.2


def test_slope_accelerates_towards_failure() -> None:
    slope = build("slope", id="s")
    slope.hazard("instability", at=12 * 3600, failure_after_s=36 * 3600)
    d1 = _run(slope, 46)[:, 0]
    early, late = np.diff(d1[:60]).mean(), np.diff(d1[-12:]).mean()
    assert late > 20 * early


def test_biogas_follows_the_day_and_a_leak_fluctuates_hard() -> None:
    bio = build("gas_well", id="b", biogas=5.0, with_temperature=True)
    leak = build("gas_well", id="l")
    leak.hazard("leak", at=0.0, peak=40, rise_s=1)
    b, lk = _run(bio, 48, 300), _run(leak, 48, 300)[:, 0]
    assert np.corrcoef(b[:, 0], b[:, 1])[0, 1] > 0.8
    assert b[:, 0].std() / b[:, 0].mean() < 0.2 and lk.std() / lk.mean() > 0.3


def test_pipe_leak_drops_pressure() -> None:
    pipe = build("gas_pipe", id="p")
    pipe.hazard("leak", at=3600, drop=100, over_s=300)
    p = _run(pipe, 3, 60)[:, 0]
    assert p[:55].mean() - p[-30:].mean() > 80


def _deliver(kind: str, **params) -> list:  # type: ignore[no-untyped-def]
    inj = Injector([Fault(kind, 100.0, 200.0, sensor="s", params=params)], seed=3)
    for t in range(0, 400, 10):
        inj.apply("s", "site", float(t), float(t), 1_000_000.0)
    return inj.flush(10_000)


def test_every_fault_kind() -> None:
    assert set(KINDS) == {
        "drift", "offset", "noise", "spike", "stuck", "false_echo", "water_ingress",
        "clock_skew", "dropout", "offline", "duplicates", "out_of_order", "burst_replay",
        "malformed",
    }  # fmt: skip
    clean = {d.ts: d.value for d in _deliver("offset", by=0)}
    inside = [ts for ts in clean if 1_000_100 <= ts < 1_000_200]
    assert all(d.value == clean[d.ts] + 5 for d in _deliver("offset", by=5) if d.ts in inside)
    drift = {d.ts: d.value - clean[d.ts] for d in _deliver("drift", per_day=86400)}
    assert drift[1_000_190] == pytest.approx(90) and drift[1_000_300] == 0
    assert {d.value for d in _deliver("stuck") if d.ts in inside} == {100.0}
    echo = [d.value for d in _deliver("false_echo", value=97.0) if d.ts in inside]
    assert len(echo) == 10 and all(abs(v - 97.0) < 0.5 for v in echo)
    some = [d.value for d in _deliver("false_echo", value=97.0, probability=0.5) if d.ts in inside]
    wet = [d.value - clean[d.ts] for d in _deliver("water_ingress", sd=1.0) if d.ts in inside]
    assert len(set(wet)) == 10 and np.std(np.diff(wet)) > 0.3  # it wanders
    assert all(d.value == clean[d.ts] for d in _deliver("water_ingress") if d.ts not in inside)
    assert 0 < sum(abs(v - 97.0) < 0.5 for v in some) < 10
    assert not [d for d in _deliver("offline") if d.ts in inside]
    assert 0 < len([d for d in _deliver("dropout", probability=0.5) if d.ts in inside]) < 10
    skew = [d.ts - 1_000_000 - d.value for d in _deliver("clock_skew", by_s=90)]
    assert max(skew) == 90 and min(skew) == 0
    dups = _deliver("duplicates", probability=1.0, after_s=5)
    assert len(dups) == 40 + 10 and len({(d.ts, d.value) for d in dups}) == 40
    late = _deliver("out_of_order", probability=1.0, delay_s=120)
    order = [d.ts for d in late]
    assert order != sorted(order) and len(late) == 40
    burst = _deliver("burst_replay")
    assert {d.at for d in burst if d.ts in inside} == {200.0}
    broken = [d for d in _deliver("malformed", probability=1.0) if d.raw is not None]
    assert len(broken) == 10 and all(d.sensor == "s" for d in broken)
    noisy = [d.value - clean[d.ts] for d in _deliver("noise", sd=1.0) if d.ts in inside]
    assert np.std(noisy) > 0.3
    spikes = [d.value - clean[d.ts] for d in _deliver("spike", probability=1.0, by=50)]
    assert spikes.count(50) == 10


def test_faults_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        Fault("gremlins", 0, 1, sensor="s")
    with pytest.raises(ValueError, match="names a sensor or a site"):
        Fault("stuck", 0, 1)


def test_durations() -> None:
    assert seconds("1d 6h") == 108000 and seconds("90s") == 90 and seconds(5) == 5.0
    with pytest.raises(ValueError):
        seconds("soon")


def test_shipped_scenarios_load_and_cover_every_domain() -> None:
    from monitor.evaluation.scenarios import SCENARIOS_DIR

    scenarios = [Scenario.load(p) for p in sorted(SCENARIOS_DIR.glob("*.yaml"))]
    domains = {s.domain for s in scenarios}
    assert {"hazardous chemicals", "tailings dam", "non-coal mine", "city gas network"} <= domains
    quiet = [s for s in scenarios if not s.expect]
    assert quiet and all(s.faults for s in quiet)
    for s in scenarios:
        sensors = {spec.id for _, spec in s.sensors()}
        for e in s.expect:
            assert e.sensor is None or e.sensor in sensors, (s.name, e.sensor)


def test_every_shipped_scenario_says_what_must_not_happen() -> None:
    from monitor.evaluation.scenarios import SCENARIOS_DIR

    for path in sorted(SCENARIOS_DIR.glob("*.yaml")):
        assert Scenario.load(path).forbid, path.name
