"""Data interruption: fires after k x interval of silence (processing time), clears on data."""

from __future__ import annotations

from rules.interruption import InterruptionEvaluator
from rules.spec import InterruptionRule
from tests.unit.factories import batch, registry


def test_silence_fires_once_and_clears_on_data() -> None:
    reg = registry(("a", "s", "gas"), ("b", "s", "gas"), interval=10)
    ev = InterruptionEvaluator(InterruptionRule(id="i", factor=3), reg, now=0)
    assert ev.tick(30, reg) == []  # exactly k x interval is not yet silent
    ev.evaluate(batch(reg, [("b", 25, 1)], received=25), reg)
    fired = ev.tick(30.01, reg)
    assert [(s.sensor, int(s.level)) for s in fired] == [("a", 4)]
    assert [s.sensor for s in ev.tick(100, reg)] == ["b"]  # a does not fire twice
    cleared = ev.evaluate(batch(reg, [("a", 101, 1)], received=101), reg)
    assert [(s.sensor, int(s.level)) for s in cleared] == [("a", 0)]


def test_sensor_added_later_starts_its_clock_then() -> None:
    reg = registry(("a", "s", "gas"), interval=10)
    ev = InterruptionEvaluator(InterruptionRule(id="i"), reg, now=0)
    from monitor.model import Sensor

    reg.add_sensor(Sensor("late", "s", "gas", "u", 10), 9)
    ev.configure(ev.rule, reg, now=1000)
    fired = ev.tick(1010, reg)
    assert [s.sensor for s in fired] == ["a"]
