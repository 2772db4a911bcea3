"""Device models with plausible physics for every domain of DOMAIN.md, seeded and reproducible.

A model owns one or more sensors and is stepped forward in time (``step(t)`` with t in seconds
since the scenario start, increasing); it returns one value per sensor.  Hazards are switched
on by ``hazard(kind, at, **params)``.  Kinds match the rule packs.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

DAY = 86400.0


@dataclass(frozen=True)
class SensorSpec:
    id: str
    kind: str
    unit: str
    tags: tuple[str, ...] = ()


def daily(t: float, peak_hour: float = 14.0) -> float:
    """-1 .. 1 over the day, highest at ``peak_hour``."""
    return math.cos(2 * math.pi * (t / 3600 - peak_hour) / 24)


def demand(t: float) -> float:
    """City gas demand 0 .. 1 with morning (07:00) and evening (19:00) peaks."""
    hour = (t / 3600) % 24
    return 0.25 + 0.75 * max(
        math.exp(-(((hour - 7) / 1.5) ** 2)), math.exp(-(((hour - 19) / 2) ** 2))
    )


def suppressed(value: float, zero_below: float) -> float:
    """A gas reading as a detector with zero suppression sends it: 0 below ``zero_below``."""
    return 0.0 if value < zero_below else value


class GnssError:
    """A GNSS position error as the field shows it (DOMAIN.md 4): white noise, an hour-scale
    correlated part (AR(1)) and a multipath pattern that repeats every sidereal day, about
    1.1 mm in all, so a 1-day regression rate scatters by about 1 mm/d."""

    SIDEREAL_DAY = 86164.0

    def __init__(
        self,
        rng: random.Random,
        white: float = 0.7,
        correlated: float = 0.7,
        tau_s: float = 3600.0,
        multipath: float = 0.8,
    ) -> None:
        self.rng, self.white, self.correlated, self.tau = rng, white, correlated, tau_s
        self.multipath = multipath
        self.phase = (rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi))
        self.state = rng.gauss(0, correlated)
        self.last: float | None = None

    def __call__(self, t: float) -> float:
        if self.last is not None:
            a = math.exp(-(t - self.last) / self.tau)
            self.state = a * self.state + self.rng.gauss(0, self.correlated * math.sqrt(1 - a * a))
        self.last = t
        w = 2 * math.pi * t / self.SIDEREAL_DAY
        pattern = 0.7 * math.sin(w + self.phase[0]) + 0.5 * math.sin(2 * w + self.phase[1])
        return self.rng.gauss(0, self.white) + self.state + self.multipath * pattern


@dataclass
class Model:
    """Base: an id prefix, a seeded random source and switched-on hazards."""

    id: str
    seed: int = 1
    hazards: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"{self.id}:{self.seed}")

    def hazard(self, kind: str, at: float, **params: Any) -> None:
        self.hazards[kind] = {"at": at, **params}

    def active(self, kind: str, t: float) -> dict[str, Any] | None:
        """The hazard's parameters from its start (``at``) until ``until`` (seconds since
        the scenario start; default: the end)."""
        h = self.hazards.get(kind)
        return h if h is not None and h["at"] <= t < h.get("until", math.inf) else None

    def sensors(self) -> list[SensorSpec]:
        raise NotImplementedError

    def step(self, t: float) -> list[float]:
        raise NotImplementedError


@dataclass
class Tank(Model):
    """A storage tank: level (%) in fill and empty cycles between 20 and 75 %, liquid
    temperature following the day, vapour pressure (kPa) following temperature.  Hazard
    ``overfill``: the fill valve does not close and the level climbs towards 100 %."""

    fill_per_h: float = 12.0
    empty_per_h: float = 6.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.level = 20 + 50 * self.rng.random()
        self.filling = self.rng.random() < 0.5
        self.last = 0.0

    def sensors(self) -> list[SensorSpec]:
        return [
            SensorSpec(f"{self.id}-lvl", "tank_level", "%"),
            SensorSpec(f"{self.id}-temp", "tank_temperature", "°C"),
            SensorSpec(f"{self.id}-press", "tank_pressure", "kPa"),
        ]

    def step(self, t: float) -> list[float]:
        dt_h = (t - self.last) / 3600
        self.last = t
        stuck_open = self.active("overfill", t) is not None
        if self.filling or stuck_open:
            self.level += self.fill_per_h * dt_h
            if self.level >= 75 and not stuck_open:
                self.filling = False
        else:
            self.level -= self.empty_per_h * dt_h
            if self.level <= 20:
                self.filling = True
        self.level = min(self.level, 99.8)
        temp = 24 + 4 * daily(t) + self.rng.gauss(0, 0.1)
        press = 180 + 1.5 * (temp - 24) + self.rng.gauss(0, 0.3)
        return [self.level + self.rng.gauss(0, 0.1), temp, press]


@dataclass
class GasDetector(Model):
    """A fixed combustible (%LEL) or toxic (ppm) detector.  Hazard ``leak``: a gusty plume
    from a source: the wind direction wanders and the detector sees about ``peak`` when it is
    downwind, a fraction of it otherwise; turbulence scatters each reading (log-normal) and
    the plume misses the detector for a reading now and then (``dips``: the share of such
    readings), so a real leak dips below its set-point every few minutes (DOMAIN.md 4).
    ``puffs_per_day``: brief vapour puffs (truck loading) of ``puff`` units at most, one
    reading each.  ``zero_below``: readings below it are sent as 0 (zero suppression: many
    detectors send 0 below 1 %LEL, DOMAIN.md 4)."""

    kind: str = "gas_combustible"
    unit: str = "%LEL"
    tags: tuple[str, ...] = ()
    background: float = 0.5
    noise: float = 0.15
    dips: float = 0.15
    gust: float = 0.3
    puffs_per_day: float = 0.0
    puff: float = 8.0
    zero_below: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.wind = self.rng.uniform(-math.pi, math.pi)
        self.last = 0.0

    def sensors(self) -> list[SensorSpec]:
        return [SensorSpec(self.id, self.kind, self.unit, self.tags)]

    def step(self, t: float) -> list[float]:
        dt = t - self.last
        self.last = t
        self.wind += self.rng.gauss(0, 0.15)
        value = max(0.0, self.background + self.rng.gauss(0, self.noise))
        if self.rng.random() < self.puffs_per_day * dt / DAY:
            value += self.puff * self.rng.uniform(0.25, 1.0)
        leak = self.active("leak", t)
        if leak:
            grow = min(1.0, (t - leak["at"]) / leak.get("rise_s", 600.0))
            downwind = 0.75 + 0.25 * math.cos(self.wind - leak.get("bearing", 0.0))
            if self.rng.random() < self.dips:
                downwind *= self.rng.uniform(0.02, 0.3)  # the plume misses the detector
            turbulence = self.rng.lognormvariate(0.0, self.gust)
            value += leak.get("peak", 40.0) * grow * downwind * turbulence
        return [suppressed(value, self.zero_below)]


@dataclass
class TailingsDam(Model):
    """A tailings dam: rain events (mm per interval) raise the pond; the phreatic line in the
    dam body follows the pond with a lag (its depth below the crest shrinks); freeboard and dry
    beach shrink as the pond rises; surface displacement creeps, then accelerates towards a
    failure time (inverse-velocity law).  Hazards: ``rain`` (mm_per_h, hours) and
    ``instability`` (failure_after_s)."""

    piezometers: int = 3
    gnss: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        self.pond = 0.0  # metres above the normal pond level
        self.phreatic = [0.0] * self.piezometers
        self.disp = [0.0] * self.gnss
        self.error = [GnssError(self.rng) for _ in range(self.gnss)]
        self.last = 0.0

    def sensors(self) -> list[SensorSpec]:
        pz = [
            SensorSpec(f"{self.id}-pz{i + 1}", "phreatic_depth", "m")
            for i in range(self.piezometers)
        ]
        gnss = [
            SensorSpec(f"{self.id}-gnss{i + 1}", "surface_displacement", "mm")
            for i in range(self.gnss)
        ]
        return [
            SensorSpec(f"{self.id}-rain", "rainfall", "mm"),
            SensorSpec(f"{self.id}-freeboard", "freeboard", "m"),
            SensorSpec(f"{self.id}-beach", "dry_beach_length", "m"),
            *pz,
            *gnss,
        ]

    def step(self, t: float) -> list[float]:
        dt = t - self.last
        self.last = t
        rain = self.active("rain", t)
        mm = 0.0
        if rain and t < rain["at"] + rain.get("hours", 12) * 3600:
            mm = max(0.0, rain.get("mm_per_h", 10.0) * dt / 3600 * (0.6 + 0.8 * self.rng.random()))
        # Pond: rain runs off a catchment ~ 20x the pond area; drains over ~2 days.
        self.pond += mm / 1000 * 20 - self.pond * dt / (2 * DAY)
        for i in range(self.piezometers):
            tau = (6 + 3 * i) * 3600
            self.phreatic[i] += (self.pond * (1.6 - 0.3 * i) - self.phreatic[i]) * dt / tau
        creep = 0.3 / DAY  # mm per second, steady creep
        unstable = self.active("instability", t)
        values = [
            mm,
            1.8 - self.pond + self.rng.gauss(0, 0.005),
            120 - 25 * self.pond + self.rng.gauss(0, 0.2),
            *(6.5 - (0.5 * i) - p + self.rng.gauss(0, 0.01) for i, p in enumerate(self.phreatic)),
        ]
        for i in range(self.gnss):
            speed = creep * (1 + 0.2 * i)
            if unstable:
                failure = unstable["at"] + unstable.get("failure_after_s", 3 * DAY)
                speed += 2.0 / max(failure - t, 3600.0) * (1 + 0.3 * i)  # inverse velocity
            self.disp[i] += speed * dt
            values.append(self.disp[i] + self.error[i](t))
        return values


@dataclass
class Slope(Model):
    """An open-pit slope: GNSS displacement creeping, then accelerating towards failure
    (hazard ``instability``), and a crack gauge whose width follows the displacement."""

    points: int = 3
    creep: float = 1.0  # mm/d of the first point; each next one creeps 50 % faster

    def __post_init__(self) -> None:
        super().__post_init__()
        self.disp = [0.0] * self.points
        self.error = [GnssError(self.rng) for _ in range(self.points)]
        self.last = 0.0

    def sensors(self) -> list[SensorSpec]:
        points = [
            SensorSpec(f"{self.id}-d{i + 1}", "slope_displacement", "mm")
            for i in range(self.points)
        ]
        return [*points, SensorSpec(f"{self.id}-crack", "crack_width", "mm")]

    def step(self, t: float) -> list[float]:
        dt = t - self.last
        self.last = t
        unstable = self.active("instability", t)
        out = []
        for i in range(self.points):
            speed = self.creep * (1.0 + 0.5 * i) / DAY
            if unstable:
                failure = unstable["at"] + unstable.get("failure_after_s", 2 * DAY)
                speed += 20.0 / max(failure - t, 1800.0) * (1 + 0.5 * i)
            self.disp[i] += speed * dt
            out.append(self.disp[i] + self.error[i](t))
        out.append(12 + 0.4 * max(self.disp) + self.rng.gauss(0, 0.05))
        return out


@dataclass
class GasWell(Model):
    """A well next to a gas pipe (methane, %LEL), with the zone's ambient temperature.
    Biogas (``biogas`` hazard or ``biogas`` > 0): low and stable, following the daily
    temperature.  Hazard ``leak``: high and fluctuating, strongest after demand peaks (the
    pipe is at its highest pressure before the peaks draw it down).  ``zero_below`` as for
    ``GasDetector``."""

    biogas: float = 0.0
    with_temperature: bool = False
    zero_below: float = 0.0

    def sensors(self) -> list[SensorSpec]:
        out = [SensorSpec(self.id, "methane_well", "%LEL")]
        if self.with_temperature:
            out.append(SensorSpec(f"{self.id}-temp", "ambient_temperature", "°C"))
        return out

    def step(self, t: float) -> list[float]:
        temp = 18 + 6 * daily(t) + self.rng.gauss(0, 0.2)
        value = max(0.0, 0.4 + self.rng.gauss(0, 0.08))
        bio = self.active("biogas", t)
        level = bio.get("level", 6.0) if bio else self.biogas
        if level:
            value += level * (1 + 0.25 * (temp - 18) / 6) + self.rng.gauss(0, 0.05)
        leak = self.active("leak", t)
        if leak:
            grow = min(1.0, (t - leak["at"]) / leak.get("rise_s", 1800.0))
            pressure = 1.2 - demand(t)
            value += leak.get("peak", 30.0) * grow * pressure * (0.5 + self.rng.random())
        value = suppressed(value, self.zero_below)
        return [value, temp] if self.with_temperature else [value]


@dataclass
class GasPipe(Model):
    """Pipe pressure (kPa) driven by demand: it sags at the peaks.  Hazard ``leak``: the
    pressure drops by ``drop`` kPa over a few minutes and stays down."""

    nominal: float = 350.0

    def sensors(self) -> list[SensorSpec]:
        return [SensorSpec(self.id, "pipe_pressure", "kPa")]

    def step(self, t: float) -> list[float]:
        value = self.nominal - 40 * demand(t) + self.rng.gauss(0, 0.8)
        leak = self.active("leak", t)
        if leak:
            value -= leak.get("drop", 120.0) * min(
                1.0, (t - leak["at"]) / leak.get("over_s", 120.0)
            )
        return [value]


MODELS: dict[str, type[Model]] = {
    "tank": Tank,
    "gas_detector": GasDetector,
    "tailings_dam": TailingsDam,
    "slope": Slope,
    "gas_well": GasWell,
    "gas_pipe": GasPipe,
}


def build(model: str, **params: Any) -> Model:
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; one of {sorted(MODELS)}")
    if "tags" in params:
        params["tags"] = tuple(params["tags"])
    return MODELS[model](**params)
