"""Per-sensor state kept in numpy arrays, exported for snapshots.

Rules keep state only for the sensors they apply to, in rows; when the set changes (a new
sensor, a changed selector) ``remap_rows`` carries every sensor's state to its new row."""

from __future__ import annotations

import numpy as np


def remap_rows(arr: np.ndarray, mapping: np.ndarray, fill: float) -> np.ndarray:
    """New rows from old ones: new row i takes old row ``mapping[i]``, or ``fill`` where that
    is -1 (a sensor without state yet)."""
    ok = mapping >= 0
    out = np.full((mapping.shape[0], *arr.shape[1:]), fill, arr.dtype)
    out[ok] = arr[mapping[ok]]
    return out


def repeats(keys: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Readings of a batch at the same event time as an earlier one of their sensor in the
    batch (a resend): the first is judged, the repeats change nothing."""
    order = np.lexsort((ts, keys))
    k, t = keys[order], ts[order]
    again = np.zeros(order.shape[0], bool)
    again[1:] = (k[1:] == k[:-1]) & (t[1:] == t[:-1])
    out = np.zeros(order.shape[0], bool)
    out[order[again]] = True
    return out


class PerSensorState:
    """Evaluators name their per-sensor arrays in ``STATE``; snapshots carry those."""

    STATE: tuple[str, ...] = ()

    def export_state(self, keys: np.ndarray) -> dict[str, np.ndarray]:
        return {name: getattr(self, name)[keys] for name in self.STATE}

    def import_state(self, keys: np.ndarray, state: dict[str, np.ndarray]) -> None:
        for name in self.STATE:
            if name in state and state[name].shape[0] == keys.shape[0]:
                getattr(self, name)[keys] = state[name]
