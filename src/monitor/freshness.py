"""Which sensors report: the newest arrival per sensor, for the console's "all clear" line
(pure: arrays indexed by registry key, time passed in)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.model import FloatArray, IntArray

# a sensor reports while its newest reading is younger than this many of its own intervals
INTERVALS = 3.0
MIN_WINDOW_S = 60.0


@dataclass(frozen=True)
class Reporting:
    sensors: int  # sensors in the registry
    reporting: int  # of them, those whose newest reading is recent (see INTERVALS)
    last_received: float | None  # when the newest reading arrived (epoch seconds)


class Freshness:
    def __init__(self) -> None:
        self.last_rx: FloatArray = np.full(0, np.nan, np.float64)

    def seen(self, sensor: IntArray, received: FloatArray) -> None:
        """One batch's readings arrived (vectorized: one pass, whatever its size)."""
        if not len(sensor):
            return
        top = int(sensor.max()) + 1
        if top > len(self.last_rx):
            grown = np.full(max(top, 2 * len(self.last_rx)), np.nan, np.float64)
            grown[: len(self.last_rx)] = self.last_rx
            self.last_rx = grown
        np.fmax.at(self.last_rx, sensor, received)

    def summary(self, keys: IntArray, interval: FloatArray, now: float) -> Reporting:
        """Of the sensors ``keys`` (with their expected intervals), how many report."""
        known = keys < len(self.last_rx)
        last = self.last_rx[keys[known]]
        window = np.maximum(
            np.nan_to_num(interval[known], nan=MIN_WINDOW_S) * INTERVALS, MIN_WINDOW_S
        )
        recent = int(np.count_nonzero(last >= now - window))
        newest = float(np.nanmax(last)) if np.isfinite(last).any() else None
        return Reporting(sensors=len(keys), reporting=recent, last_received=newest)
