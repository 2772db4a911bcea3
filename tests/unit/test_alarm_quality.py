"""The shipped packs on noisy data (issue 16, section 2): a fluctuating plume gives one alert,
escalation stays immediate, a bad zero gives one health alert, and the two DOMAIN.md reds
(combustible gas at 50 %LEL held 60 s while rising; a tank at HH and still rising) fire on a
real rise and not on noise around the set-point."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.tracker import AlertTracker
from monitor.model import Level, Signal
from rules.engine import RuleEngine, load_pack
from simulators.faults import Fault, Injector
from simulators.physics import GasDetector, GasPipe, GasWell, GnssError, TailingsDam, Tank
from tests.bench.gnss_rates import openings, shipped
from tests.unit.factories import batch, registry

T0 = 1_790_000_000.0  # the first reading's event time (``feed``)
DAY = 86400.0


def engine(kind: str, interval: float, pack: str = "hazchem") -> RuleEngine:
    eng = RuleEngine(registry(("s-1", "site", kind), interval=interval), now=0.0)
    for rule in load_pack(pack):
        eng.upsert(rule)
    return eng


def feed(eng: RuleEngine, values: np.ndarray, step: float, per: int = 10) -> list[Signal]:
    """Readings ``step`` apart, ``per`` a message (one batch gives the signals of the same
    readings one by one: the evaluator contract)."""
    out: list[Signal] = []
    ts = T0 + step * np.arange(values.shape[0])
    for i in range(0, values.shape[0], per):
        part = [
            ("s-1", t, v)
            for t, v in zip(ts[i : i + per].tolist(), values[i : i + per].tolist(), strict=True)
        ]
        out += eng.judge(batch(eng.registry, part), part[-1][1], 300.0)[0]
    return out


def rows(signals: list[Signal], rule: str) -> int:
    """Alert rows: openings from normal."""
    level, opened = 0, 0
    for s in (s for s in signals if s.rule == rule):
        opened += level == 0 and s.level != 0
        level = int(s.level)
    return opened


def plume(seed: int, n: int, mean: float, dips_every: int) -> np.ndarray:
    """A turbulent plume: log-normal puffs about ``mean``, dipping to near zero for one or two
    readings every ``dips_every`` readings (the wind turns)."""
    rng = np.random.default_rng(seed)
    x = mean * rng.lognormal(0.0, 0.35, n)
    for start in range(dips_every, n, dips_every):
        x[start : start + int(rng.integers(1, 3))] = rng.uniform(0.2, 3.0)
    return x


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 10_000), st.integers(4, 8))
def test_a_fluctuating_plume_is_one_alert_and_escalation_is_immediate(
    seed: int, every: int
) -> None:
    """30 s readings; a leak whose plume drops out for 30-60 s every 2-4 min (DOMAIN.md 4:
    fluctuating gas) holds one alert; a step to 70 %LEL is orange at once."""
    quiet = np.random.default_rng(seed).normal(1.0, 0.3, 40).clip(0)
    leak = plume(seed, 240, 30.0, every)  # two hours
    values = np.r_[quiet, leak, [70.0], quiet]
    signals = feed(engine("gas_combustible", 30), values, 30.0)
    assert rows(signals, "gas_combustible.high") == 1
    orange = [s for s in signals if s.rule == "gas_combustible.high" and s.level == 2]
    # it opens on the second reading in a row past blue (confirm: 2); from then on no delay:
    # orange at the first reading past 50
    above = values >= 10
    opened = int(np.argmax(above[1:] & above[:-1])) + 1
    first = opened + int(np.argmax(values[opened:] >= 50))
    assert orange and orange[0].ts == 1_790_000_000.0 + first * 30.0


def test_a_bad_zero_gives_one_health_alert() -> None:
    """A detector whose zero has slipped reads -0.5 .. +0.3 %LEL for a day (30 s readings)."""
    rng = np.random.default_rng(3)
    values = rng.uniform(-0.5, 0.3, 2880)
    signals = feed(engine("gas_combustible", 30), values, 30.0)
    assert rows(signals, "gas_combustible.range_low") == 1
    assert not [s for s in signals if s.category.value == "process" and s.level]


def test_a_lone_negative_glitch_is_no_health_alert() -> None:
    values = np.r_[np.full(50, 1.0), [-3.0], np.full(50, 1.0)]
    assert not [s for s in feed(engine("gas_combustible", 30), values, 30.0) if s.level]


# Derandomized: a 55 %LEL plume with 2 %LEL of white noise passes the 2 %LEL/min red rate by
# chance about once in 3,000 two-hour plumes (seed 1883 does; README, known limits), so random
# draws made this test fail now and then without any change.
@settings(max_examples=8, deadline=None, derandomize=True)
@given(st.integers(0, 10_000))
def test_combustible_gas_red_on_a_rise_held_above_50_not_on_a_plume_around_it(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # one detector, 30 s readings: 45 -> 73 %LEL in 10 minutes, with 1.5 %LEL of noise
    rise = np.linspace(45, 73, 21) + rng.normal(0, 1.5, 21)
    signals = feed(engine("gas_combustible", 30), np.r_[np.full(20, 40.0), rise], 30.0)
    red = [s for s in signals if s.rule == "gas_combustible.rising" and s.level == 1]
    assert red, "a single detector rising past 50 %LEL and held there must go red"
    above = 20 + int(np.argmax(rise >= 50))
    assert red[0].ts - (1_790_000_000.0 + above * 30) <= 120 + 60  # held 60 s, then 2 readings
    # a plume about 55 for two hours, 2 %LEL of noise: orange, never red
    wander = 55 + rng.normal(0, 2, 240)
    signals = feed(engine("gas_combustible", 30), wander, 30.0)
    assert not [s for s in signals if s.rule == "gas_combustible.rising" and s.level]
    assert rows(signals, "gas_combustible.high") == 1


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 10_000))
def test_tank_red_at_hh_and_still_rising_not_at_hh_and_steady(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # 60 s readings, 0.1 % of level noise: 90 -> 99.3 % at 8 %/h (a stuck fill valve)
    climb = 90 + 8 * np.arange(70) / 60 + rng.normal(0, 0.1, 70)
    signals = feed(engine("tank_level", 60), climb, 60.0)
    red = [s for s in signals if s.rule == "tank_level.rising" and s.level == 1]
    assert red, "a tank at HH and still rising must go red"
    hh = int(np.argmax(climb >= 95))
    assert red[0].ts - (1_790_000_000.0 + hh * 60) <= 2 * 60
    # full and steady at 96 % for a day (the valve closed): orange, never red
    steady = 96 + rng.normal(0, 0.1, 1440)
    signals = feed(engine("tank_level", 60), steady, 60.0)
    assert not [s for s in signals if s.rule == "tank_level.rising" and s.level]


def gnss(seed: int, days: float, outliers: int) -> np.ndarray:
    """10-minute GNSS displacement (mm) of a point creeping 0.3 mm/d, with the field's error
    (simulators.physics.GnssError) and ``outliers`` single wild readings of 8-16 mm either way."""
    rng = random.Random(seed)
    error = GnssError(rng)
    t = 600.0 * np.arange(int(days * 144))
    x = 0.3 * t / 86400 + np.array([error(v) for v in t.tolist()])
    for i in rng.sample(range(300, t.shape[0]), outliers):
        x[i] += rng.choice((-1, 1)) * rng.uniform(8, 16)
    return x


def process(signals: list[Signal]) -> list[Signal]:
    return [s for s in signals if s.category.value == "process" and s.level]


@settings(max_examples=4, deadline=None)
@given(st.integers(0, 10_000))
def test_gnss_noise_and_single_outliers_raise_no_displacement_rate(seed: int) -> None:
    """30 days of a quiet dam point: about 1 mm of correlated error with daily multipath and
    ten 8-16 mm outliers.  No hourly red and nothing above a blue daily rate (a blue on noise
    alone is rare, not impossible: the next test counts them); the outliers are health
    spikes."""
    signals = feed(engine("surface_displacement", 600, "tailings"), gnss(seed, 30, 10), 600.0)
    daily_blue = ("surface_displacement.rate_d", 4)
    assert [s for s in process(signals) if (s.rule, s.level) != daily_blue] == []
    assert rows(signals, "surface_displacement.rate_d") <= 1
    assert rows(signals, "surface_displacement.spike") >= 5


@settings(max_examples=2, deadline=None)
@given(st.integers(0, 1_000_000))
def test_gnss_noise_raises_daily_rates_within_the_false_alert_target(first: int) -> None:
    """20 dam points for 30 days (600 sensor-days) on the field's noise: no hourly red, and
    blue daily rates within the target of 1 per 1,000 sensor-days (at most 2 here: with the
    0.3 measured on series the rules were not tuned on, docs/benchmarks.md, 3 or more come
    about once in 1,000 runs)."""
    found = openings(shipped(), 20, 30, 10, first)
    assert found["surface_displacement.rate_h"] == 0
    assert found["surface_displacement.rate_d"] <= 2


@settings(max_examples=4, deadline=None)
@given(st.integers(0, 10_000))
def test_slope_outliers_are_health_spikes_and_no_speed_alert(seed: int) -> None:
    signals = feed(engine("slope_displacement", 600, "mine_slope"), gnss(seed, 10, 6), 600.0)
    assert process(signals) == []
    assert rows(signals, "slope_displacement.spike") >= 3


def test_an_accelerating_dam_goes_blue_then_red_within_two_readings() -> None:
    """Quiet for 3 days, then the speed rises linearly to 8 mm/h over a day: the daily rate is
    blue once it is past 2 mm/d, the hourly red within two readings of 5 mm/h holding."""
    quiet = gnss(1, 3, 0)
    t = 600.0 * np.arange(144)
    speed = 8 * t / 86400  # mm/h
    error = GnssError(random.Random(2))
    moving = quiet[-1] + np.cumsum(speed * 600 / 3600) + np.array([error(v) for v in t.tolist()])
    signals = feed(engine("surface_displacement", 600, "tailings"), np.r_[quiet, moving], 600.0)
    daily = [s for s in signals if s.rule == "surface_displacement.rate_d" and s.level]
    assert daily and min(s.level for s in daily) <= 3
    red = [s for s in signals if s.rule == "surface_displacement.rate_h" and s.level == 1]
    assert red, "an hourly speed past 5 mm/h must go red"
    past = 432 + int(np.argmax(speed >= 5.5))
    assert red[0].ts - (1_790_000_000.0 + past * 600) <= 2 * 600


def test_a_leak_is_no_drift_and_a_slow_baseline_shift_is() -> None:
    """A day and a half of clean air at 60 s, then either a gusty 40 %LEL plume for two hours
    (process alerts, not suspect: no drift) or a zero creeping up 0.5 %LEL an hour (drift)."""
    rng = np.random.default_rng(5)
    clean = rng.normal(0.5, 0.15, 2160).clip(0)
    leak = feed(engine("gas_combustible", 60), np.r_[clean, plume(5, 120, 40.0, 6)], 60.0)
    assert rows(leak, "gas_combustible.high") == 1
    assert rows(leak, "gas_combustible.drift") == 0
    creep = 0.5 + 0.5 * np.arange(600) / 60 + rng.normal(0, 0.15, 600)  # to 5.5 %LEL in 10 h
    drift = feed(engine("gas_combustible", 60), np.r_[clean, creep], 60.0)
    assert rows(drift, "gas_combustible.drift") == 1
    assert not process(drift)


def pressure(seed: int, n: int) -> np.ndarray:
    return 330 + np.random.default_rng(seed).normal(0, 0.8, n)


def test_a_loop_drop_is_one_health_alert_and_a_real_drop_is_a_pressure_drop() -> None:
    """1-minute pipe pressure: a transmitter loop drop reads 0 kPa for 30 minutes (no pressure
    drop alert, one health alert); a leak takes 120 kPa off over 3 minutes (a drop alert)."""
    base = pressure(1, 120)
    loop = np.r_[base[:60], np.zeros(30), base[60:]]
    signals = feed(engine("pipe_pressure", 60, "city_gas"), loop, 60.0)
    assert process(signals) == []
    assert rows(signals, "pipe_pressure.range_low") == 1
    leak = np.r_[base[:60], base[60:63] - [40, 80, 120], base[63:] - 120]
    signals = feed(engine("pipe_pressure", 60, "city_gas"), leak, 60.0)
    drops = [s for s in signals if s.rule == "pipe_pressure.drop" and s.level]
    assert drops and drops[0].ts <= 1_790_000_000.0 + 62 * 60
    assert rows(signals, "pipe_pressure.range_low") == 0


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 10_000), st.floats(12, 45))
def test_a_single_puff_opens_nothing_and_two_readings_do(seed: int, puff: float) -> None:
    clean = np.random.default_rng(seed).normal(0.5, 0.15, 60).clip(0)
    once = np.r_[clean[:30], [puff], clean[30:]]
    assert process(feed(engine("gas_combustible", 30), once, 30.0)) == []
    twice = np.r_[clean[:30], [puff, puff], clean[30:]]
    opened = process(feed(engine("gas_combustible", 30), twice, 30.0))
    assert opened and opened[0].ts == 1_790_000_000.0 + 31 * 30.0


def test_a_well_detector_that_was_stuck_does_not_page_after_it_recovers() -> None:
    """methane_well.anomaly made live: two clean days at 5 minutes, a day stuck at one value,
    then two clean days.  The stuck day teaches the models nothing (no zero variance learnt),
    so the clean readings after it are not anomalies."""
    eng = engine("methane_well", 300, "city_gas")
    (rule,) = [r for r in load_pack("city_gas") if r.id == "methane_well.anomaly"]
    eng.upsert(rule.model_copy(update={"shadow": False}))
    rng = np.random.default_rng(8)
    clean = lambda n: rng.normal(0.4, 0.08, n).clip(0)  # noqa: E731
    values = np.r_[clean(576), np.full(288, 0.41), clean(576)]
    signals = feed(eng, values, 300.0)
    after = 1_790_000_000.0 + 864 * 300
    assert not [
        s for s in signals if s.rule == "methane_well.anomaly" and s.level and s.ts >= after
    ]


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 10_000), puffs=st.sampled_from([0.0, 2.0]))
def test_zero_suppression_is_not_a_stuck_detector(seed: int, puffs: float) -> None:
    """A detector with zero suppression (DOMAIN.md 4: it sends 0 below 1 %LEL) on a clean
    background of 0.5 %LEL sends 0 for days, broken only by the odd vapour puff: no health
    alert, no anomaly (made live); the same detector stuck at a real reading is one health
    alert.  Combustible-gas detectors at 30 s and methane wells at 5 min."""
    for kind, pack, step, device in (
        ("gas_combustible", "hazchem", 30.0, GasDetector("g", zero_below=1.0,
                                                          puffs_per_day=puffs, seed=seed)),
        ("methane_well", "city_gas", 300.0, GasWell("w", zero_below=1.0, seed=seed)),
    ):  # fmt: skip
        days = 3
        values = np.array([device.step(i * step)[0] for i in range(int(days * 86400 / step))])
        assert (values == 0).mean() > 0.9  # mostly zeros: suppressed
        eng = engine(kind, step, pack)
        for rule in load_pack(pack):
            if rule.type == "anomaly":
                eng.upsert(rule.model_copy(update={"shadow": False}))
        signals = [s for s in feed(eng, values, step) if s.level]
        assert not signals, [(s.rule, s.ts, s.value) for s in signals[:5]]
        stuck = engine(kind, step, pack)
        held = np.r_[values[:100], np.full(200, 0.7)]  # the reading freezes at 0.7
        flat = [s for s in feed(stuck, held, step) if s.rule == f"{kind}.flatline"]
        assert rows(flat, f"{kind}.flatline") == 1


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), size=st.floats(15, 60), down=st.booleans())
def test_a_lone_pressure_outlier_is_a_spike_and_a_real_drop_is_not(
    seed: int, size: float, down: bool
) -> None:
    """Demand-driven pipe pressure at 1 minute (the simulator's): three lone outliers of
    ``size`` kPa are three health spikes and no process alert; a leak's 120 kPa drop that
    persists is a pressure drop and no spike (the reading after it is not back)."""
    pipe = GasPipe("p", seed=seed)
    base = np.array([pipe.step(i * 60.0)[0] for i in range(600)])
    outliers = base.copy()
    outliers[[150, 300, 450]] += -size if down else size
    signals = feed(engine("pipe_pressure", 60, "city_gas"), outliers, 60.0)
    assert process(signals) == []
    spikes = [s for s in signals if s.rule == "pipe_pressure.spike" and s.level]
    assert [round((s.ts - 1_790_000_000.0) / 60) for s in spikes] == [151, 301, 451]
    leak = base.copy()
    leak[300:] -= np.minimum(120.0, 60.0 * np.arange(1, 301))  # 120 kPa off in 2 minutes
    signals = feed(engine("pipe_pressure", 60, "city_gas"), leak, 60.0)
    assert [s for s in signals if s.rule == "pipe_pressure.drop" and s.level]
    assert rows(signals, "pipe_pressure.spike") == 0


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), size=st.floats(4, 20))
def test_a_lone_well_outlier_is_a_spike_and_a_fluctuating_leak_is_not(
    seed: int, size: float
) -> None:
    """Wells at 5 minutes (the simulator's): a lone reading ``size`` %LEL above a clean
    background is a health spike; a fluctuating leak (high, strongest after demand peaks) is
    a methane alert and no spike."""
    well = GasWell("w", seed=seed)
    clean = np.array([well.step(i * 300.0)[0] for i in range(400)])
    lone = clean.copy()
    lone[200] += size
    signals = feed(engine("methane_well", 300, "city_gas"), lone, 300.0)
    assert rows(signals, "methane_well.spike") == 1
    leaking = GasWell("w", seed=seed)
    leaking.hazard("leak", at=100 * 300.0)
    values = np.array([leaking.step(i * 300.0)[0] for i in range(600)])
    signals = feed(engine("methane_well", 300, "city_gas"), values, 300.0)
    assert [s for s in signals if s.rule == "methane_well.high" and s.level]
    assert rows(signals, "methane_well.spike") == 0


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), share=st.sampled_from([0.3, 1.0]), echo=st.floats(95, 99))
def test_a_false_echo_is_a_health_alert_and_no_tank_alert(
    seed: int, share: float, echo: float
) -> None:
    """A tank (the simulator's, 60 s readings) cycling 20-75 %; its radar gauge locks on an
    obstruction at ``echo`` % for 45 minutes (every reading, or a share of them), through the
    fault injector: no level alert (H, HH, HH and still rising), one health alert
    (tank_level.jump).  A stuck fill valve still gives orange at HH and red while rising.
    (An echo held on every reading for longer than its distance from the last real level
    at 20 %/h is judged: README, known limits.)"""
    tank = Tank("t", seed=seed)
    injector = Injector(
        [Fault("false_echo", 6 * 3600, 6.75 * 3600, sensor="t-lvl",
               params={"value": echo, "probability": share})],
        seed=seed,
    )  # fmt: skip
    for i in range(12 * 60):
        injector.apply("t-lvl", "site", i * 60.0, tank.step(i * 60.0)[0], 0.0)
    values = np.array([d.value for d in injector.flush(1e9)])
    signals = feed(engine("tank_level", 60), values, 60.0)
    assert process(signals) == [], [(s.rule, s.level, s.value) for s in process(signals)][:3]
    assert rows(signals, "tank_level.jump") == 1
    overfill = Tank("t", seed=seed)
    overfill.hazard("overfill", at=0.0)
    climb = np.array([overfill.step(i * 60.0)[0] for i in range(10 * 60)])
    signals = feed(engine("tank_level", 60), climb, 60.0)
    assert [s for s in signals if s.rule == "tank_level.high" and s.level == 2]
    assert [s for s in signals if s.rule == "tank_level.rising" and s.level == 1]
    assert rows(signals, "tank_level.jump") == 0


def piezometer(seed: int, days: int, *faults: Fault, rain_at: float | None = None) -> np.ndarray:
    """The simulator's first piezometer of a dam (10-minute readings, 1 cm of noise; a 6 h
    storm of 30 mm/h at ``rain_at`` raises the phreatic line and lets it fall over days),
    through the fault injector."""
    dam = TailingsDam("d", seed=seed)
    if rain_at is not None:
        dam.hazard("rain", rain_at, mm_per_h=30.0, hours=6)
    at = [s.id for s in dam.sensors()].index("d-pz1")
    injector = Injector(list(faults), seed=seed)
    for i in range(days * 144):
        injector.apply("d-pz1", "d", i * 600.0, dam.step(i * 600.0)[at], 0.0)
    return np.array([d.value for d in sorted(injector.flush(1e12), key=lambda d: d.ts)])


def test_water_in_a_piezometer_is_one_health_alert_and_a_storm_none() -> None:
    """Water in the cable (the reading wanders, a random walk of 2 cm a reading, for 5 days)
    is one phreatic_depth.wander health alert, raised within a day and a half; a clean or a
    storm-driven phreatic line over 30 days raises none (seeds held out from the ones the
    set-point was chosen on)."""
    for seed in range(200, 204):
        quiet = feed(engine("phreatic_depth", 600, "tailings"), piezometer(seed, 30), 600.0)
        storm = piezometer(seed, 30, rain_at=10 * DAY)
        stormy = feed(engine("phreatic_depth", 600, "tailings"), storm, 600.0)
        assert rows(quiet, "phreatic_depth.wander") == rows(stormy, "phreatic_depth.wander") == 0
        wet = Fault("water_ingress", 5 * DAY, 10 * DAY, sensor="d-pz1", params={"sd": 0.02})
        signals = feed(engine("phreatic_depth", 600, "tailings"), piezometer(seed, 20, wet), 600.0)
        assert rows(signals, "phreatic_depth.wander") == 1
        first = next(s for s in signals if s.rule == "phreatic_depth.wander")
        assert 5 * DAY < first.ts - T0 < 6.5 * DAY


@pytest.mark.parametrize("seed", [201, 202])  # two walks that reach blue and yellow
def test_the_alerts_of_a_wandering_piezometer_are_suppressed(seed: int) -> None:
    """Water that also pulls the reading down (0.3 m a day, to yellow): the phreatic alerts
    it raises come while the piezometer is in fault, so they are suppressed by design (and
    suspect), and none is ever shown: the health alert stands for them."""
    wet = Fault(
        "water_ingress", 5 * DAY, 10 * DAY, sensor="d-pz1", params={"sd": 0.02, "per_day": -0.3}
    )
    signals = feed(engine("phreatic_depth", 600, "tailings"), piezometer(seed, 12, wet), 600.0)
    tracker = AlertTracker()
    events = [e for s in signals for e in tracker.observe(s, s.ts)]
    low = [e.alert for e in events if e.alert.rule == "phreatic_depth.low"]
    assert low and all(a.suppressed and a.suspect for a in low)
    assert min(a.peak_level for a in low) >= Level.YELLOW  # blue or yellow, never orange


def test_a_storm_red_on_a_wandering_piezometer_is_raised() -> None:
    """A storm (30 mm/h for 6 h) drives the phreatic line to red while the piezometer wanders
    with water in its cable: the blue to orange on the way are suppressed, the red is shown
    (suspect)."""
    wet = Fault("water_ingress", 3 * DAY, 12 * DAY, sensor="d-pz1", params={"sd": 0.02})
    values = piezometer(202, 12, wet, rain_at=5 * DAY)
    signals = feed(engine("phreatic_depth", 600, "tailings"), values, 600.0)
    tracker = AlertTracker()
    events = [e for s in signals for e in tracker.observe(s, s.ts)]
    low = [e for e in events if e.alert.rule == "phreatic_depth.low"]
    shown = [e for e in low if not e.alert.suppressed]
    assert shown and shown[0].level == Level.RED and shown[0].alert.suspect
    assert all(e.alert.suppressed for e in low if e.level > Level.RED and e.ts < shown[0].ts)
