"""Kernel types shared by ingest, rules and alerts.

Everything here is plain data: no I/O, no clocks.  Timestamps inside the hot path are
float epoch seconds (UTC); at the edges (API, store) they become aware ``datetime``s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int32]
QualityArray = npt.NDArray[np.int16]


class Level(IntEnum):
    """Warning levels (预警): 1 is the most severe.  0 means "no alert"."""

    CLEAR = 0
    RED = 1
    ORANGE = 2
    YELLOW = 3
    BLUE = 4

    @property
    def colour(self) -> str:
        return _COLOURS[self]


_COLOURS = {
    Level.CLEAR: "none",
    Level.RED: "red",
    Level.ORANGE: "orange",
    Level.YELLOW: "yellow",
    Level.BLUE: "blue",
}


class Category(StrEnum):
    """Alert categories are kept apart (DOMAIN.md §1)."""

    PROCESS = "process"
    SENSOR_HEALTH = "sensor_health"
    DATA_INTERRUPTION = "data_interruption"


class SiteKind(StrEnum):
    MAJOR_HAZARD_SOURCE = "major_hazard_source"
    TAILINGS_DAM = "tailings_dam"
    MINE = "mine"
    GAS_NETWORK_ZONE = "gas_network_zone"


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    name: str
    tenant: str
    kind: SiteKind
    hazard_grade: int | None = None
    location: dict[str, float] | None = None
    district: str | None = None  # the district or park it belongs to (risk roll-ups)


@dataclass(frozen=True, slots=True)
class Sensor:
    id: str
    site: str
    kind: str
    unit: str
    expected_interval_s: float = 60.0
    tags: tuple[str, ...] = ()
    location: dict[str, float] | None = None


@dataclass(slots=True)
class ReadingBatch:
    """Columnar batch of readings.

    ``sensor`` holds registry indices (see ``monitor.registry``), ``ts`` event time and
    ``received`` processing time, both as epoch seconds.
    """

    sensor: IntArray
    ts: FloatArray
    value: FloatArray
    quality: QualityArray
    received: FloatArray

    def __len__(self) -> int:
        return int(self.sensor.shape[0])

    @classmethod
    def empty(cls) -> ReadingBatch:
        return cls(
            np.empty(0, np.int32),
            np.empty(0, np.float64),
            np.empty(0, np.float64),
            np.empty(0, np.int16),
            np.empty(0, np.float64),
        )

    @classmethod
    def concat(cls, batches: list[ReadingBatch]) -> ReadingBatch:
        batches = [b for b in batches if len(b)]
        if not batches:
            return cls.empty()
        if len(batches) == 1:
            return batches[0]
        return cls(
            np.concatenate([b.sensor for b in batches]),
            np.concatenate([b.ts for b in batches]),
            np.concatenate([b.value for b in batches]),
            np.concatenate([b.quality for b in batches]),
            np.concatenate([b.received for b in batches]),
        )

    def take(self, index: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> ReadingBatch:
        return ReadingBatch(
            self.sensor[index],
            self.ts[index],
            self.value[index],
            self.quality[index],
            self.received[index],
        )


@dataclass(frozen=True, slots=True)
class Reject:
    """A piece of input that could not be turned into a reading, and why."""

    reason: str
    raw: str
    source: str
    received: float
    topic: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Signal:
    """A rule's verdict change for one fingerprint (rule + sensor or site).

    ``level`` CLEAR means the condition no longer holds.
    """

    rule: str
    sensor: str | None
    site: str
    level: Level
    category: Category
    ts: float
    received: float
    value: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    retrospective: bool = False
    item: str | None = None  # a monitored item or area (group rules), when not one sensor

    @property
    def fingerprint(self) -> str:
        base = f"{self.rule}|{self.sensor or self.item or self.site}"
        return f"{base}|retro" if self.retrospective else base
