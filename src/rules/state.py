"""Per-sensor state kept in numpy arrays indexed by sensor key, exported for snapshots."""

from __future__ import annotations

import numpy as np


class PerSensorState:
    """Evaluators name their per-sensor arrays in ``STATE``; snapshots carry those."""

    STATE: tuple[str, ...] = ()

    def export_state(self, keys: np.ndarray) -> dict[str, np.ndarray]:
        return {name: getattr(self, name)[keys] for name in self.STATE}

    def import_state(self, keys: np.ndarray, state: dict[str, np.ndarray]) -> None:
        for name in self.STATE:
            if name in state and state[name].shape[0] == keys.shape[0]:
                getattr(self, name)[keys] = state[name]
