"""Composite rules: AND/OR/NOT over other rules' levels on the sensors of one site."""

from __future__ import annotations

from collections.abc import Callable

from monitor.model import Level, Signal
from monitor.registry import Registry
from rules.group import GroupState
from rules.spec import AllOf, AnyOf, CompositeRule, Condition, Expr, NotOf, rules_in

# (rule id, site) -> the most severe level of that rule on any sensor of the site (0: none)
SiteLevel = Callable[[str, str], int]


def holds(expr: Expr, site: str, level_of: SiteLevel, trace: list[str]) -> bool:
    if isinstance(expr, Condition):
        level = level_of(expr.rule, site)
        ok = 0 < level <= expr.at
        trace.append(f"{expr.rule} at level {level or 'none'} ({'≤' if ok else '>'} {expr.at})")
        return ok
    if isinstance(expr, NotOf):
        return not holds(expr.not_, site, level_of, trace)
    if isinstance(expr, AllOf):
        return all([holds(p, site, level_of, trace) for p in expr.all])
    assert isinstance(expr, AnyOf)
    return any([holds(p, site, level_of, trace) for p in expr.any])


class CompositeEvaluator(GroupState):
    def __init__(self, rule: CompositeRule, registry: Registry) -> None:
        super().__init__()
        self.rule = rule
        self.registry = registry

    @property
    def sources(self) -> set[str]:
        return rules_in(self.rule.when)

    def configure(self, rule: CompositeRule, registry: Registry) -> None:
        self.rule, self.registry = rule, registry

    def observe(self, signal: Signal) -> list[Signal]:
        """Follow one signal of a referenced rule and re-judge its site."""
        if signal.rule not in self.sources or not self.rule.enabled:
            return []
        self.follow(signal)
        site = signal.site
        if self.rule.selector.site not in (None, site):
            return []
        trace: list[str] = []
        level = self.rule.level if holds(self.rule.when, site, self.site_level, trace) else 0
        if not self.changed(site, level):
            return []
        return [
            Signal(
                rule=self.rule.id,
                sensor=None,
                site=site,
                level=Level(level),
                category=self.rule.category,
                ts=signal.ts,
                received=signal.received,
                evidence={"type": "composite", "conditions": trace},
            )
        ]
