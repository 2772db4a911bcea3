"""A red from a sensor in fault waits for corroboration (issue 16).

While a sensor has an active spike or drift health verdict of its own (a fault that makes its
readings look worse than they are), a process red from it is held at orange, with the reason
in its evidence; red then needs corroboration (count and corroboration rules judge several
sensors and are not held back).  A range or stuck fault holds nothing back: an over-range gas
reading may be real.

Decided in the engine from the rules' own state and the batch's signals in event-time order,
so a replay after a restart holds back exactly what the first run did.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from monitor.model import Category, Level, Signal
from monitor.registry import Registry
from rules.contract import Evaluator
from rules.derived import DerivedEvaluator
from rules.spec import DriftRule, SpikeRule

HELD = "red held back: the sensor is in fault (spike or drift); red needs corroboration"


def holders(evaluators: Iterable[Evaluator]) -> list[DerivedEvaluator]:
    """The health rules whose fault holds a red back."""
    return [
        e
        for e in evaluators
        if isinstance(e, DerivedEvaluator)
        and isinstance(e.rule, SpikeRule | DriftRule)
        and e.rule.category == Category.SENSOR_HEALTH
    ]


def holding(
    rules: list[DerivedEvaluator], keys: np.ndarray, registry: Registry
) -> dict[str, set[str]]:
    """Per sensor of ``keys``, the holding rules active on it now."""
    out: dict[str, set[str]] = {}
    keys = np.unique(keys)
    for e in rules:
        ok, rows = e.table.rows(keys)
        active = np.zeros(keys.shape[0], bool)
        active[ok] = e.active[rows[ok]] != 0
        for key in keys[active].tolist():
            out.setdefault(registry.by_key[key].id, set()).add(e.id)
    return out


def hold_back(signals: list[Signal], held: dict[str, set[str]], ids: set[str]) -> list[Signal]:
    """``signals`` in event-time order (health first at one instant), with the reds of
    sensors in fault held at orange; ``held`` is updated as the health verdicts go by."""
    out = []
    for s in signals:
        if s.rule in ids and s.sensor is not None:
            faults = held.setdefault(s.sensor, set())
            (faults.add if s.level != Level.CLEAR else faults.discard)(s.rule)
        elif (
            s.level == Level.RED
            and s.category == Category.PROCESS
            and s.sensor is not None
            and held.get(s.sensor)
        ):
            s = replace(s, level=Level.ORANGE, evidence={**s.evidence, "held_back": HELD})
        out.append(s)
    return out
