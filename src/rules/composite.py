"""Composite rules: AND/OR/NOT over other rules' levels on the sensors of one site."""

from __future__ import annotations

from collections.abc import Callable

from monitor.model import Level, Signal
from monitor.registry import Registry
from rules.group import SubjectLevels
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


class CompositeEvaluator(SubjectLevels):
    def __init__(self, rule: CompositeRule, registry: Registry) -> None:
        super().__init__()
        self.rule = rule
        self.registry = registry

    def configure(self, rule: CompositeRule, registry: Registry) -> None:
        self.rule, self.registry = rule, registry

    def evaluate(
        self, signals: list[Signal], level_of: SiteLevel, ts: float, received: float
    ) -> list[Signal]:
        sources = rules_in(self.rule.when)
        sites = sorted({s.site for s in signals if s.rule in sources})
        out = []
        for site in sites:
            if self.rule.selector.site not in (None, site) or not self.rule.enabled:
                continue
            trace: list[str] = []
            level = self.rule.level if holds(self.rule.when, site, level_of, trace) else 0
            if self.changed(site, level):
                out.append(
                    Signal(
                        rule=self.rule.id,
                        sensor=None,
                        site=site,
                        level=Level(level),
                        category=self.rule.category,
                        ts=ts,
                        received=received,
                        evidence={"type": "composite", "conditions": trace},
                    )
                )
        return out
