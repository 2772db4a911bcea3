"""Count escalation and corroboration: levels of monitored items (and sites) from how many of
their points stand at a level under the source rules."""

from __future__ import annotations

from collections.abc import Iterable

from monitor.model import Level, Sensor, Signal
from monitor.registry import Registry
from rules.group import GroupState
from rules.spec import CountRule, CountStep


def _grade(levels: list[int], steps: Iterable[CountStep]) -> tuple[int, CountStep | None]:
    best, fired = 0, None
    for step in steps:
        n = sum(1 for lv in levels if 0 < lv <= step.at)
        if n >= step.count and (best == 0 or step.to < best):
            best, fired = step.to, step
    return best, fired


class CountEvaluator(GroupState):
    def __init__(self, rule: CountRule, registry: Registry) -> None:
        super().__init__()
        self.rule = rule
        self.registry = registry
        self._index()

    @property
    def sources(self) -> set[str]:
        return set(self.rule.sources)

    def configure(self, rule: CountRule, registry: Registry) -> None:
        self.rule, self.registry = rule, registry
        self._index()

    def _index(self) -> None:
        """Per site, its sensors under this rule's selector (grading must not scan them all)."""
        self.members_of: dict[str, list[Sensor]] = {}
        for sensor in self.registry.sensors.values():
            if self.rule.selector.matches(sensor):
                self.members_of.setdefault(sensor.site, []).append(sensor)

    def items_of(self, sensor: Sensor) -> list[str]:
        if self.rule.group_by == "kind":
            return [f"{sensor.site}/{sensor.kind}"]
        prefix = self.rule.tag_prefix or ""
        return [f"{sensor.site}/{tag}" for tag in sensor.tags if tag.startswith(prefix)]

    def observe(self, signal: Signal) -> list[Signal]:
        """Follow one source signal and re-grade its site."""
        if signal.rule not in self.sources or not self.rule.enabled:
            return []
        self.follow(signal)
        return self._grade_site(signal.site, signal.ts, signal.received)

    def _point(self, sensor: str) -> int:
        return min(
            [lv for r in self.rule.sources if (lv := self.point_level(r, sensor))], default=0
        )

    def _grade_site(self, site: str, ts: float, received: float) -> list[Signal]:
        members: dict[str, list[tuple[str, int]]] = {}
        for sensor in self.members_of.get(site, ()):
            level = self._point(sensor.id)
            for item in self.items_of(sensor):
                members.setdefault(item, []).append((sensor.id, level))
        out: list[Signal] = []
        item_levels: dict[str, int] = {}
        for item, points in sorted(members.items()):
            level, step = _grade([lv for _, lv in points], self.rule.steps)
            # an item's own level: its most severe point, or its count level if more severe
            item_levels[item] = min(
                [lv for _, lv in points if lv] + ([level] if level else []), default=0
            )
            named = [p for p, lv in points if step and 0 < lv <= step.at]
            out.extend(self._emit(item, site, level, ts, received, named, step))
        if self.rule.items_step is not None:
            level, step = _grade(list(item_levels.values()), [self.rule.items_step])
            named = [i for i, lv in item_levels.items() if step and 0 < lv <= step.at]
            out.extend(self._emit(site, site, level, ts, received, named, step, items=True))
        return out

    def _emit(
        self,
        subject: str,
        site: str,
        level: int,
        ts: float,
        received: float,
        named: list[str],
        step: CountStep | None,
        items: bool = False,
    ) -> list[Signal]:
        if not self.changed(subject, level):
            return []
        what = "items" if items else "points"
        evidence: dict[str, object] = {"type": "count", what: named}
        if step is not None:
            evidence["rule"] = (
                f"{step.count} {what} at level {step.at} or above make level {step.to}"
            )
        return [
            Signal(
                rule=self.rule.id,
                sensor=None,
                site=site,
                level=Level(level),
                category=self.rule.category,
                ts=ts,
                received=received,
                evidence=evidence,
                item=None if items else subject,
            )
        ]
