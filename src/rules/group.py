"""State shared by group rules (count, composite).

A group rule follows the levels its source rules give to points (sensors) or subjects (items
of count rules), updated signal by signal in event-time order, so that its own verdicts do not
depend on how the input was cut into micro-batches (replays after a rebalance give the same
alerts).  It also remembers the level it last gave each subject (an item ``site/...`` or a
site), so only changes are signalled.
"""

from __future__ import annotations

import numpy as np

from monitor.model import Signal


class GroupState:
    def __init__(self) -> None:
        self.levels: dict[str, int] = {}  # subject -> level this rule gave it
        # source rule -> point (sensor id or item) -> (site, level)
        self.points: dict[str, dict[str, tuple[str, int]]] = {}

    def follow(self, signal: Signal) -> None:
        point = signal.sensor or signal.item or signal.site
        held = self.points.setdefault(signal.rule, {})
        if signal.level:
            held[point] = (signal.site, int(signal.level))
        else:
            held.pop(point, None)

    def point_level(self, rule: str, point: str) -> int:
        return self.points.get(rule, {}).get(point, ("", 0))[1]

    def site_level(self, rule: str, site: str) -> int:
        return min((lv for s, lv in self.points.get(rule, {}).values() if s == site), default=0)

    def changed(self, subject: str, level: int) -> bool:
        if self.levels.get(subject, 0) == level:
            return False
        if level:
            self.levels[subject] = level
        else:
            self.levels.pop(subject, None)
        return True

    def restore(self, subject: str, level: int) -> None:
        self.levels[subject] = level

    def export_state(self, sites: set[str]) -> dict[str, np.ndarray]:
        mine = [(k, v) for k, v in self.levels.items() if k.split("/", 1)[0] in sites]
        points = [
            (rule, point, site, lv)
            for rule, held in self.points.items()
            for point, (site, lv) in held.items()
            if site in sites
        ]
        return {
            "subjects": np.array([k for k, _ in mine], dtype=str),
            "levels": np.array([v for _, v in mine], np.int8),
            "point_rule": np.array([p[0] for p in points], dtype=str),
            "point_id": np.array([p[1] for p in points], dtype=str),
            "point_site": np.array([p[2] for p in points], dtype=str),
            "point_level": np.array([p[3] for p in points], np.int8),
        }

    def import_state(self, state: dict[str, np.ndarray]) -> None:
        for subject, level in zip(
            state["subjects"].tolist(), state["levels"].tolist(), strict=True
        ):
            self.levels[str(subject)] = int(level)
        if "point_rule" in state:
            for rule, point, site, level in zip(
                state["point_rule"].tolist(),
                state["point_id"].tolist(),
                state["point_site"].tolist(),
                state["point_level"].tolist(),
                strict=True,
            ):
                self.points.setdefault(str(rule), {})[str(point)] = (str(site), int(level))

    def reset_sites(self, sites: set[str]) -> None:
        for subject in [k for k in self.levels if k.split("/", 1)[0] in sites]:
            del self.levels[subject]
        for held in self.points.values():
            for point in [p for p, (s, _) in held.items() if s in sites]:
                del held[point]
