"""The detector contract, run over every detector and over the ensemble around them."""

from __future__ import annotations

import typing

import numpy as np
import pytest

from rules.detectors.ensemble import Ensemble
from rules.detectors.specs import AnyDetectorSpec, ArtSpec, PatternSpec, build

# Every detector with its defaults, and two detectors of shape over blocks of 4 s (4 readings;
# the blocks are ``rules.detectors.windowed``'s, the same for every detector of shape).
SPECS = [cls() for cls in typing.get_args(AnyDetectorSpec)] + [
    PatternSpec(block=4.0),
    ArtSpec(block=4.0),
]
CAP = 4


def _block(spec: AnyDetectorSpec) -> float:
    return float(getattr(spec, "block", 0.0))


def _id(spec: AnyDetectorSpec) -> str:
    return spec.name + ("-block" if _block(spec) else "")


def _steps(spec: AnyDetectorSpec, t: int) -> bool:
    """Whether the reading at second ``t`` is a step of the model: every reading is, except
    over blocks, where only the reading that closes a block is."""
    return not _block(spec) or t % _block(spec) == 0


def _series(n: int = 400, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 20 + np.sin(np.arange(n) / 15) + rng.normal(0, 0.2, n)


def _feed(det, key: int, values: np.ndarray) -> list[float]:
    out = []
    k = np.array([key])
    for i, v in enumerate(values):
        x = np.array([v])
        t = np.array([float(i)])
        out.append(float(det.score(k, t, x).raw[0]))
        det.learn(k, t, x, np.array([True]))
    return out


def _ensemble(spec: AnyDetectorSpec, grace: int = 50) -> Ensemble:
    return Ensemble([build(spec, CAP)], CAP, threshold=0.5, grace=grace, adapt_after=5)


def _run(e: Ensemble, key: int, values: np.ndarray, t0: int = 0):
    return [
        e.step(np.array([key]), np.array([float(t0 + i)]), np.array([v]))
        for i, v in enumerate(values)
    ]


@pytest.mark.parametrize("spec", SPECS, ids=_id)
def test_score_does_not_change_state_and_comes_before_learn(spec):
    det = build(spec, CAP)
    _feed(det, 1, _series(200))
    before = det.export_state(np.array([1]))
    k, t, x = np.array([1]), np.array([999.0]), np.array([35.0])
    first = det.score(k, t, x).raw[0]
    assert det.score(k, t, x).raw[0] == first  # scoring twice is the same: no state change
    after = det.export_state(np.array([1]))
    for name in before:
        np.testing.assert_array_equal(before[name], after[name])
    det.learn(k, t, x, np.array([True]))
    assert any(not np.array_equal(before[n], det.export_state(k)[n]) for n in before)


@pytest.mark.parametrize("spec", SPECS, ids=_id)
def test_grace_period_judges_nothing(spec):
    e = _ensemble(spec, grace=50)
    wild = np.r_[np.full(10, 20.0), np.full(10, 900.0), _series(30)]
    verdicts = _run(e, 1, wild)
    assert all(v.score[0] == 0 and not v.anomalous[0] for v in verdicts)


def _anomaly(spec: AnyDetectorSpec) -> np.ndarray:
    """What each detector is for: a sustained jump (drift detectors need a few readings), for
    ``stuck`` a sensor that repeats one value, for ``context`` (sequences of levels) a fast
    swing between levels of +-7 standard deviations that it has never seen follow each
    other."""
    if spec.name == "context":
        return np.tile([15.0, 25.0], 10)
    return np.full(20, 21.0) if spec.name == "stuck" else np.full(5 + 12 * int(_block(spec)), 1e4)


@pytest.mark.parametrize("spec", SPECS, ids=_id)
def test_anomalous_readings_do_not_teach(spec):
    e = _ensemble(spec, grace=20)
    _run(e, 1, _series(300))
    det = e.detectors[0]
    for i, value in enumerate(_anomaly(spec)):
        model = det.model_of(1)
        verdict = _run(e, 1, np.array([value]), t0=300 + i)[0]
        if verdict.anomalous[0]:
            assert det.model_of(1) == model
            break
        if _steps(spec, 300 + i):
            assert det.model_of(1) != model  # a normal-looking reading teaches
    else:
        pytest.fail(f"{spec.name} never flagged {_anomaly(spec)[0]}")


@pytest.mark.parametrize(
    "spec", [s for s in SPECS if s.name in ("range", "stuck", "pattern")], ids=_id
)
def test_a_recurring_anomaly_is_recalled_not_reported_again(spec):
    e = _ensemble(spec, grace=20)
    normal = _series(300)
    _run(e, 1, normal)
    anomaly = _anomaly(spec)
    first = _run(e, 1, np.r_[anomaly, normal[:60]], t0=300)
    second = _run(e, 1, np.r_[anomaly, normal[60:120]], t0=300 + len(first))
    assert any(v.anomalous[0] for v in first)
    assert not any(v.anomalous[0] for v in second)


@pytest.mark.parametrize("spec", SPECS, ids=_id)
def test_each_sensor_has_its_own_clone(spec):
    a = build(spec, CAP)
    b = build(spec, CAP)
    values = _series(150)
    _feed(a, 1, values)
    _feed(a, 2, values * 50 + 7)  # another sensor, wildly different, in the same detector
    alone = _feed(b, 1, values)
    k, t, x = np.array([1]), np.array([500.0]), np.array([values[-1]])
    assert a.score(k, t, x).raw[0] == pytest.approx(b.score(k, t, x).raw[0])
    assert alone  # sensor 1 alone in b saw the same stream


@pytest.mark.parametrize("spec", SPECS, ids=_id)
def test_snapshot_round_trip_gives_identical_scores(spec):
    e = _ensemble(spec)
    _run(e, 1, _series(250))
    keys = np.array([1])
    saved = {p: part.export_state(keys) for p, part in e.parts().items()}
    copy = _ensemble(spec)
    for p, part in copy.parts().items():
        part.import_state(keys, saved[p])
    rest = np.r_[_series(100, seed=9), [60.0, 61.0]]
    ours = [float(v.score[0]) for v in _run(e, 1, rest, t0=250)]
    theirs = [float(v.score[0]) for v in _run(copy, 1, rest, t0=250)]
    assert ours == theirs


def test_rounds_do_not_depend_on_batch_boundaries():
    spec = SPECS[0]
    values = _series(300)
    keys = np.tile([1, 2], 150)
    one = _ensemble(spec).run_batch(keys, np.repeat(np.arange(150.0), 2), values)
    e = _ensemble(spec)
    parts = [
        e.run_batch(keys[i : i + 7], np.repeat(np.arange(150.0), 2)[i : i + 7], values[i : i + 7])
        for i in range(0, 300, 7)
    ]
    np.testing.assert_array_equal(one.score, np.concatenate([p.score for p in parts]))


def test_pattern_over_blocks_sees_a_daily_rise_that_does_not_come():
    """Readings every 5 min, demand high from 07:00 to 19:00 each day, except on day 12, when
    it stays low all day: every reading is in the range the sensor has shown, and each hour
    of that day looks like a night.  Over 4-hour blocks (a window of 32 hours) that day is a
    shape never seen; no normal day after the warm-up is flagged."""
    day = 288
    hour = np.arange(14 * day) % day / 12
    high = (hour >= 7) & (hour < 19)
    high[12 * day : 13 * day] = False
    values = np.where(high, 80.0, 20.0) + np.random.default_rng(5).normal(0, 1.0, hour.size)
    ts = np.arange(hour.size) * 300.0

    def flagged_days(spec: PatternSpec) -> np.ndarray:
        e = Ensemble([build(spec, CAP)], CAP, threshold=0.5, grace=100, adapt_after=10)
        verdicts = e.run_batch(np.ones(hour.size, np.int64), ts, values)
        return np.flatnonzero(verdicts.anomalous) // day

    flagged = flagged_days(PatternSpec(block=4 * 3600.0))
    assert 12 in flagged
    assert not any((flagged >= 7) & (flagged < 12)) and not any(flagged == 13), flagged
    assert 12 not in flagged_days(PatternSpec())  # reading by reading, it looks like a night
