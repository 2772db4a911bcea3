"""State shared by group rules (count, composite): the level each subject (an item
``site/...`` or a site) was last given, so only changes are signalled."""

from __future__ import annotations

import numpy as np


class SubjectLevels:
    def __init__(self) -> None:
        self.levels: dict[str, int] = {}

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

    def _of(self, sites: set[str]) -> list[tuple[str, int]]:
        return [(k, v) for k, v in self.levels.items() if k.split("/", 1)[0] in sites]

    def export_state(self, sites: set[str]) -> dict[str, np.ndarray]:
        pairs = self._of(sites)
        return {
            "subjects": np.array([k for k, _ in pairs], dtype=str),
            "levels": np.array([v for _, v in pairs], np.int8),
        }

    def import_state(self, state: dict[str, np.ndarray]) -> None:
        for subject, level in zip(
            state["subjects"].tolist(), state["levels"].tolist(), strict=True
        ):
            self.levels[str(subject)] = int(level)

    def reset_sites(self, sites: set[str]) -> None:
        for subject, _ in self._of(sites):
            del self.levels[subject]
