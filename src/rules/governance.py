"""Threshold governance: which rule changes need a second person.

A change that touches a red or orange set-point (levels 1 and 2, in the rule or its
overrides, or a group rule that raises level 1 or 2) must be proposed by one person and
approved by another; until then the old rule stays in force.
"""

from __future__ import annotations

from typing import Any

from rules.spec import (
    AnomalyRule,
    AnyRule,
    CompositeRule,
    CountRule,
    FlatlineRule,
    InterruptionRule,
)

SEVERE = (1, 2)


def severe_part(rule: AnyRule | None) -> Any:
    if rule is None:
        return None
    if isinstance(rule, InterruptionRule | FlatlineRule):
        return rule.level if rule.level in SEVERE else None
    if isinstance(rule, AnomalyRule):
        # On its own at most yellow, but it can raise a threshold alert into orange or red.
        live = rule.enabled and rule.raise_thresholds and not rule.shadow
        return ("raises thresholds", rule.selector.model_dump(mode="json")) if live else None
    if isinstance(rule, CompositeRule):
        return (rule.level, rule.when.model_dump(mode="json")) if rule.level in SEVERE else None
    if isinstance(rule, CountRule):
        steps = [s.model_dump() for s in rule.steps if s.to in SEVERE]
        if rule.items_step and rule.items_step.to in SEVERE:
            steps.append(rule.items_step.model_dump())
        return (steps, rule.sources, rule.group_by, rule.tag_prefix) if steps else None
    own = {k: v for k, v in rule.levels.items() if k in SEVERE}
    overrides = [
        (
            o.selector.model_dump(mode="json"),
            {k: v for k, v in (o.levels or {}).items() if k in SEVERE},
        )
        for o in rule.overrides
    ]
    severe = [o for o in overrides if o[1]]
    if not own and not severe:
        return None  # no red or orange level: nobody else needs to approve it
    return (rule.direction, own, severe, rule.enabled)


def needs_approval(current: AnyRule | None, proposed: AnyRule) -> bool:
    return bool(severe_part(current) != severe_part(proposed))


def diff(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, list[Any]]:
    """Field -> [old, new] for every top-level field that differs."""
    old = old or {}
    return {
        k: [old.get(k), new.get(k)] for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)
    }
