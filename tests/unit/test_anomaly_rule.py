"""The anomaly rule in the engine: grading, explanation, raising thresholds, shadow mode,
snapshots, and the slow methane rise that stays under every threshold."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest

from monitor.model import Level
from rules.engine import RuleEngine, load_pack
from rules.spec import AnomalyRule, parse_rule
from rules.statecodec import encode_state
from tests.unit.factories import batch, registry

GAS = ("gw-1", "zone-1", "methane_well")


def _engine(*rules) -> RuleEngine:
    engine = RuleEngine(registry(GAS, interval=60.0), now=0.0)
    for rule in rules:
        engine.upsert(rule)
    return engine


def _quiet(n: int, seed: int = 1, level: float = 1.0, noise: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return level + noise * rng.standard_normal(n)


def _feed(engine: RuleEngine, values, t0: float = 0.0, step: float = 60.0):
    signals = []
    for i, v in enumerate(values):
        ts = t0 + i * step
        signals += engine.judge(batch(engine.registry, [("gw-1", ts, float(v))]), ts, 3600)[0]
    return signals


def test_brief_anomaly_is_blue_persistent_is_yellow_never_more():
    engine = _engine(AnomalyRule(id="anom", grace=50, persist=3))
    assert _feed(engine, _quiet(200)) == []
    brief = _feed(engine, [4.0, *_quiet(20, seed=2)], t0=200 * 60)
    levels = [s.level for s in brief]
    assert levels[0] == Level.BLUE and Level.CLEAR in levels and Level.YELLOW not in levels
    longer = _feed(engine, [6.0] * 8 + list(_quiet(30, seed=3)), t0=300 * 60)
    levels = [s.level for s in longer]
    assert Level.YELLOW in levels and min(int(s.level) for s in longer if s.level) >= 3
    first = longer[0]
    assert first.evidence["type"] == "anomaly"
    assert first.evidence["observed"] == 6.0
    low, high = first.evidence["band"]
    assert low < first.evidence["expected"] < high < 6.0
    assert first.evidence["score"] >= first.evidence["threshold"]
    assert first.evidence["detector"] in {"ewma", "holt", "cusum"}


def test_anomaly_on_the_same_side_raises_a_threshold_alert_by_one_level():
    threshold = parse_rule(
        {
            "id": "thr",
            "type": "threshold",
            "selector": {"kind": "methane_well"},
            "levels": {4: 5, 3: 10, 2: 20, 1: 50},
        }
    )
    plain, boosted = _engine(threshold), _engine(threshold, AnomalyRule(id="anom", grace=50))
    quiet = _quiet(200)
    for engine in (plain, boosted):
        _feed(engine, quiet)
    jump = [6.0]  # blue by threshold; far above what this well has shown
    assert [s.level for s in _feed(plain, jump, t0=200 * 60)] == [Level.BLUE]
    got = {s.rule: s for s in _feed(boosted, jump, t0=200 * 60)}
    assert got["thr"].level == Level.YELLOW
    assert got["thr"].evidence["raised_by_anomaly"] is True
    # No raise without the rule's consent.
    off = _engine(threshold, AnomalyRule(id="anom", grace=50, raise_thresholds=False))
    _feed(off, quiet)
    assert {s.rule: s.level for s in _feed(off, jump, t0=200 * 60)}["thr"] == Level.BLUE


def test_shadow_mode_records_scores_and_would_be_alerts_without_alerting():
    engine = _engine(AnomalyRule(id="anom", grace=50, shadow=True))
    signals = _feed(engine, [*_quiet(200), 6.0, 6.0, 6.0, 6.0])
    assert signals == []
    batches = engine.drain_shadow()
    would = np.concatenate([b.would_alert for b in batches])
    score = np.concatenate([b.score for b in batches])
    assert len(would) == sum(map(len, batches)) == 204
    assert would[-4:].tolist() == [4, 0, 3, 0]
    assert batches[-1].anomalous[-1] and score[-1] >= 0.5 and score[0] == 0.0
    assert {s for b in batches for s in b.sensors} == {"gw-1"} and {b.rule for b in batches} == {
        "anom"
    }
    assert engine.drain_shadow() == []


def test_snapshot_round_trip_keeps_detector_state():
    rule = AnomalyRule(id="anom", grace=50)
    a, b = _engine(rule), _engine(rule)
    _feed(a, _quiet(150))
    keys = np.array([a.registry.keys["gw-1"]])
    b.import_state(a.export_state(keys), now=0.0)
    tail = [*_quiet(30, seed=5), 3.0, 3.0]
    sa = [(s.level, s.evidence) for s in _feed(a, tail, t0=150 * 60)]
    sb = [(s.level, s.evidence) for s in _feed(b, tail, t0=150 * 60)]
    assert sa == sb and sa


def test_state_taken_is_kept_while_judging_goes_on():
    """A snapshot is taken under the pipeline lock and encoded and written after it: what is
    written is the state when it was taken, not what judging made of it since.  Snapshots in
    the formats written before (an npz, deflated or not) still restore."""
    rule = AnomalyRule(id="anom", grace=50)
    a, b, c, d = (_engine(rule) for _ in range(4))
    _feed(a, _quiet(150))
    keys = np.array([a.registry.keys["gw-1"]])
    taken = a.export_arrays(keys)
    npz = io.BytesIO()
    np.savez(npz, allow_pickle=False, **taken)
    _feed(a, [*_quiet(30, seed=5), 3.0, 3.0], t0=150 * 60)  # judging goes on after the take
    b.import_state(encode_state(taken), now=0.0)
    c.import_state(npz.getvalue(), now=0.0)
    d.import_state(zlib.compress(npz.getvalue(), 1), now=0.0)
    tail = [*_quiet(30, seed=7), 3.0, 3.0]
    sb, sc, sd = ([(s.level, s.evidence) for s in _feed(e, tail, t0=150 * 60)] for e in (b, c, d))
    assert sb == sc == sd and sb


def test_a_slow_methane_rise_is_flagged_before_the_first_threshold():
    """Background near 1 %LEL, then a rise of 0.01 %LEL per minute: the blue set-point
    (5 %LEL) is crossed after about 400 minutes.  The city gas pack's anomaly rule, shipped
    in shadow mode, flags it long before once an operator turns it live."""
    rules = load_pack("city_gas")
    anomaly = [r for r in rules if isinstance(r, AnomalyRule)]
    assert anomaly, "the city_gas pack ships an anomaly rule for methane wells"
    assert anomaly[0].shadow and anomaly[0].blue_after == 3
    anomaly = [anomaly[0].model_copy(update={"shadow": False})]
    engine = _engine(*[anomaly[0] if r.id == anomaly[0].id else r for r in rules])
    rng = np.random.default_rng(11)
    quiet = 1.0 + 0.05 * rng.standard_normal(24 * 60)  # one day, one reading a minute
    rise = 1.0 + 0.01 * np.arange(1, 600) + 0.05 * rng.standard_normal(599)
    signals = _feed(engine, np.r_[quiet, rise])
    first_anomaly = min(s.ts for s in signals if s.rule == anomaly[0].id and s.level)
    first_threshold = min(s.ts for s in signals if s.rule == "methane_well.high" and s.level)
    crossing = (24 * 60 + int(np.argmax(rise >= 5.0))) * 60.0
    assert first_threshold >= crossing
    assert first_anomaly < first_threshold
    minutes_early = (first_threshold - first_anomaly) / 60
    assert minutes_early > 60, minutes_early
    assert not [s for s in signals if s.rule == anomaly[0].id and s.ts < 24 * 3600 and s.level]


@pytest.mark.parametrize(
    "bad", [{"threshold": 0}, {"persist": 1}, {"detectors": []}, {"detectors": [{"name": "nope"}]}]
)
def test_bad_anomaly_rules_name_the_field(bad):
    with pytest.raises(Exception) as err:
        parse_rule({"id": "a", "type": "anomaly", **bad})
    assert next(iter(bad)) in str(err.value)
