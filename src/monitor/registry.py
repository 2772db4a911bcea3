"""In-memory registry of sites and sensors, with columnar lookups for the hot path.

A sensor's *key* is its stable integer id from the store (``sensors.key``); the arrays below
are indexed by key so that batches can carry small integers instead of strings.
"""

from __future__ import annotations

import numpy as np

from monitor.model import FloatArray, IntArray, Sensor, Site

_GROW = 1024


class Registry:
    def __init__(self) -> None:
        self.sites: dict[str, Site] = {}
        self.site_keys: dict[str, int] = {}
        self.site_ids: list[str] = []
        self.sensors: dict[str, Sensor] = {}
        self.keys: dict[str, int] = {}
        self.by_key: dict[int, Sensor] = {}
        self.site_of: IntArray = np.full(_GROW, -1, np.int32)
        self.interval: FloatArray = np.full(_GROW, np.nan, np.float64)
        self.version = 0

    @property
    def capacity(self) -> int:
        return int(self.site_of.shape[0])

    def add_site(self, site: Site) -> None:
        if site.id not in self.site_keys:
            self.site_keys[site.id] = len(self.site_ids)
            self.site_ids.append(site.id)
        self.sites[site.id] = site
        self.version += 1

    def add_sensor(self, sensor: Sensor, key: int) -> None:
        if sensor.site not in self.sites:
            raise KeyError(f"sensor {sensor.id!r} names unknown site {sensor.site!r}")
        if key >= self.capacity:
            self._grow(key + 1)
        self.sensors[sensor.id] = sensor
        self.keys[sensor.id] = key
        self.by_key[key] = sensor
        self.site_of[key] = self.site_keys[sensor.site]
        self.interval[key] = sensor.expected_interval_s
        self.version += 1

    def next_key(self) -> int:
        return max(self.by_key, default=0) + 1

    def _grow(self, needed: int) -> None:
        size = max(needed, self.capacity * 2)
        site_of = np.full(size, -1, np.int32)
        site_of[: self.capacity] = self.site_of
        interval = np.full(size, np.nan, np.float64)
        interval[: self.capacity] = self.interval
        self.site_of, self.interval = site_of, interval

    def sensor_id(self, key: int) -> str:
        return self.by_key[key].id

    def site_of_sensor(self, key: int) -> Site:
        return self.sites[self.by_key[key].site]
