"""Scenarios: YAML timelines of devices, hazards and faults, with the alerts they must raise
(``expect``) and must not raise (``forbid``).  See simulators/scenarios/*.yaml and the README.

``Scenario.deliveries()`` yields, step by step, what the devices send after fault injection:
the same stream whether it goes to the pipeline directly (``riskmon eval scenarios``) or over
MQTT, Kafka or HTTP (``riskmon simulate --scenario``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from simulators.faults import Delivery, Fault, FaultKind, Injector
from simulators.physics import Model, SensorSpec, build

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
Message = tuple[str, str, bytes]  # tenant, site, payload


def seconds(value: str | float | int) -> float:
    """``90``, ``"90s"``, ``"15m"``, ``"36h"``, ``"2d"`` or sums such as ``"1d 6h"``."""
    if isinstance(value, int | float):
        return float(value)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd])", value)
    if not parts or re.sub(r"[\d.\s smhd]", "", value):
        raise ValueError(f"not a duration: {value!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


Duration = str | float | int


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SiteDef(_Strict):
    id: str
    name: str
    tenant: str
    kind: str
    location: dict[str, float] | None = None
    hazard_grade: int | None = Field(default=None, ge=1, le=4)
    district: str | None = None


class DeviceDef(_Strict):
    model: str
    id: str
    site: str
    params: dict[str, Any] = Field(default_factory=dict)


class HazardDef(_Strict):
    device: str
    kind: str
    at: Duration
    params: dict[str, Any] = Field(default_factory=dict)


class FaultDef(_Strict):
    """A fault (``simulators.faults``) on a sensor or a site, in timeline terms."""

    kind: FaultKind
    start: Duration
    end: Duration
    sensor: str | None = None
    site: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    def fault(self) -> Fault:
        return Fault(self.kind, seconds(self.start), seconds(self.end), self.sensor, self.site,
                     self.params)  # fmt: skip


class ExpectDef(_Strict):
    """An alert of ``rule`` on ``sensor`` (or on ``site``: group rules) that must open within
    [``from``, ``to``] at ``level`` (the most severe level it reaches)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    rule: str
    sensor: str | None = None
    site: str | None = None
    level: int = Field(ge=1, le=4)
    from_: Duration = Field(alias="from")
    to: Duration


class ExpectRiskDef(_Strict):
    """The site's risk (``alerts.risk``) over [``from``, ``to``]: its most severe level there
    is ``level`` (it reaches it, and nothing more severe)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    site: str
    level: int = Field(ge=1, le=4)
    from_: Duration = Field(alias="from")
    to: Duration


class ForbidDef(_Strict):
    """No alert of ``rule`` (on ``sensor`` or ``site``, when given) may open at all."""

    rule: str
    sensor: str | None = None
    site: str | None = None


class Scenario(_Strict):
    name: str
    description: str = ""
    domain: str
    start: datetime
    duration: Duration
    step: Duration = "1m"
    seed: int = 1
    rule_packs: list[str] = Field(default_factory=lambda: ["common"])
    sites: list[SiteDef]
    devices: list[DeviceDef]
    hazards: list[HazardDef] = Field(default_factory=list)
    faults: list[FaultDef] = Field(default_factory=list)
    expect: list[ExpectDef] = Field(default_factory=list)
    forbid: list[ForbidDef] = Field(default_factory=list)
    expect_risk: list[ExpectRiskDef] = Field(default_factory=list)
    allow: list[str] = Field(
        default_factory=list,
        description="rules whose alerts are expected side effects (for example of a fault)",
    )

    @field_validator("duration", "step")
    @classmethod
    def _duration(cls, v: Duration) -> Duration:
        seconds(v)
        return v

    @classmethod
    def load(cls, path: Path) -> Scenario:
        return cls.model_validate(yaml.safe_load(path.read_text()))

    @property
    def epoch0(self) -> float:
        return self.start.timestamp()

    def models(self) -> list[tuple[DeviceDef, Model]]:
        out = []
        for device in self.devices:
            model = build(device.model, id=device.id, seed=self.seed, **device.params)
            for hazard in self.hazards:
                if hazard.device == device.id:
                    model.hazard(hazard.kind, seconds(hazard.at), **hazard.params)
            out.append((device, model))
        known = {d.id for d in self.devices}
        for hazard in self.hazards:
            if hazard.device not in known:
                raise ValueError(f"hazard on unknown device {hazard.device!r}")
        return out

    def sensors(self) -> list[tuple[str, SensorSpec]]:
        """(site, sensor) for every sensor of every device."""
        return [(d.site, s) for d, m in self.models() for s in m.sensors()]

    def config(self) -> dict[str, Any]:
        """The sites and sensors in riskmon's configuration format."""
        interval = seconds(self.step)
        return {
            "sites": [s.model_dump(exclude_none=True) for s in self.sites],
            "sensors": [
                {"id": s.id, "site": site, "kind": s.kind, "unit": s.unit,
                 "expected_interval_s": interval, "tags": list(s.tags)}
                for site, s in self.sensors()
            ],
        }  # fmt: skip

    def deliveries(self) -> Iterator[tuple[float, list[tuple[str, Delivery]]]]:
        """Per step: (seconds since start, [(site, delivery)]) in delivery order."""
        models = self.models()
        faults = [f.fault() for f in self.faults]
        injector = Injector(faults, self.seed)
        site_of = {s.id: site for site, s in self.sensors()}
        step, end = seconds(self.step), seconds(self.duration)
        t = 0.0
        while t <= end:
            for device, model in models:
                for spec, value in zip(model.sensors(), model.step(t), strict=True):
                    injector.apply(spec.id, device.site, t, round(value, 4), self.epoch0)
            yield t, [(site_of[d.sensor], d) for d in injector.flush(t)]
            t += step

    def messages(self, shift: float = 0.0) -> Iterator[tuple[float, int, list[Message]]]:
        """Per step: (seconds since start, deliveries, [(tenant, site, payload)]): the
        readings of a step as one JSON array per site (event times moved by ``shift``
        seconds), each malformed delivery as its own payload."""
        tenants = {s.id: s.tenant for s in self.sites}
        for t, deliveries in self.deliveries():
            out: list[Message] = []
            by_site: dict[str, list[dict[str, object]]] = {}
            for site, d in deliveries:
                if d.raw is not None:
                    out.append((tenants[site], site, d.raw.encode()))
                else:
                    reading = {"sensor": d.sensor, "ts": round(d.ts + shift, 3), "value": d.value}
                    by_site.setdefault(site, []).append(reading)
            out += [(tenants[s], s, orjson.dumps(r)) for s, r in by_site.items()]
            yield t, len(deliveries), out

    @property
    def sensor_days(self) -> float:
        return len(self.sensors()) * seconds(self.duration) / 86400
