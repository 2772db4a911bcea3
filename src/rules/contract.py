"""The evaluator contract: what the engine asks of every per-sensor rule, and the one table
that maps a rule type to the evaluator that judges it.  Adding a rule type touches its spec
(``rules.spec``), its evaluator and one row of ``FACTORIES``.

Group rules (count, composite) follow the other rules' signals per site and item, not readings
per sensor; they keep their own small contract (``rules.group``).

Every evaluator keeps:
- state only in its sensor table (``rules.state.SensorTable``: a row per sensor it applies to;
  ``export_state`` / ``import_state`` carry the rows of a set of sensors, as numpy arrays with
  their keys, for snapshots);
- ``configure`` keeps state: a live rule change needs no restart;
- a reading not newer than the last judged one of its sensor changes nothing;
- one batch gives the signals of the same readings one by one.
``tests/unit/test_rule_contract.py`` checks these over every row of ``FACTORIES``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from monitor.model import ReadingBatch, Signal
from monitor.registry import Registry
from rules.anomaly import AnomalyEvaluator
from rules.derived import DerivedEvaluator
from rules.flatline import FlatlineEvaluator
from rules.interruption import InterruptionEvaluator
from rules.leak import LeakEvaluator
from rules.spec import (
    AnomalyRule,
    AnyRule,
    DriftRule,
    FlatlineRule,
    InterruptionRule,
    LeakRule,
    RateRule,
    SpikeRule,
    ThresholdRule,
    WindowRule,
)
from rules.threshold import ThresholdEvaluator


class Evaluator(Protocol):
    @property
    def id(self) -> str: ...

    def written(self) -> AnyRule:
        """The rule as written (the anomaly rule grades through a threshold of its own)."""
        ...

    def configure(self, rule: Any, registry: Registry, now: float | None = None) -> None: ...

    def evaluate(
        self, batch: ReadingBatch, registry: Registry, agree: np.ndarray | None = None
    ) -> list[Signal]:
        """Judge a batch sorted by event time.  ``agree``: per reading, the side (+1 high, -1
        low) of an anomaly that agrees with it, for rules that let it raise their level."""
        ...

    def tick(self, now: float, registry: Registry, owned: np.ndarray | None = None) -> list[Signal]:
        """Processing-time judgements (silence); ``owned``: the sensors this process owns."""
        ...

    def export_state(self, keys: np.ndarray) -> dict[str, np.ndarray]:
        """Copies, never views: a snapshot is written after judging has gone on."""
        ...

    def import_state(self, keys: np.ndarray, state: dict[str, np.ndarray]) -> None: ...

    def reset(self, keys: np.ndarray, now: float) -> None: ...

    def restore(self, key: int, level: int, last_ts: float | None = None) -> None:
        """Re-arm a level from an alert that is still active in the store."""
        ...


Factory = Callable[[Any, Registry, float], Evaluator]
FACTORIES: dict[type, Factory] = {
    ThresholdRule: lambda rule, registry, now: ThresholdEvaluator(rule, registry),
    RateRule: lambda rule, registry, now: DerivedEvaluator(rule, registry),
    WindowRule: lambda rule, registry, now: DerivedEvaluator(rule, registry),
    SpikeRule: lambda rule, registry, now: DerivedEvaluator(rule, registry),
    DriftRule: lambda rule, registry, now: DerivedEvaluator(rule, registry),
    LeakRule: lambda rule, registry, now: LeakEvaluator(rule, registry),
    AnomalyRule: lambda rule, registry, now: AnomalyEvaluator(rule, registry),
    InterruptionRule: lambda rule, registry, now: InterruptionEvaluator(rule, registry, now),
    FlatlineRule: lambda rule, registry, now: FlatlineEvaluator(rule, registry),
}


def make_evaluator(rule: AnyRule, registry: Registry, now: float) -> Evaluator:
    return FACTORIES[type(rule)](rule, registry, now)
