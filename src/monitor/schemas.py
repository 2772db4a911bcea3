"""Pydantic bodies of the public contract: config YAML entries and API request bodies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat

from alerts.model import ReasonCode
from monitor.model import Sensor, Site, SiteKind


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    name: str
    tenant: str = Field(min_length=1)
    kind: SiteKind
    hazard_grade: int | None = Field(default=None, ge=1, le=4)
    location: dict[str, StrictFloat] | None = None
    district: str | None = Field(default=None, min_length=1, max_length=200)

    def to_model(self) -> Site:
        return Site(
            self.id, self.name, self.tenant, self.kind, self.hazard_grade, self.location,
            self.district,
        )  # fmt: skip


class SensorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    site: str
    kind: str = Field(min_length=1)
    unit: str
    expected_interval_s: float = Field(default=60.0, gt=0)
    tags: list[str] = Field(default_factory=list)
    location: dict[str, StrictFloat] | None = None

    def to_model(self) -> Sensor:
        return Sensor(
            self.id,
            self.site,
            self.kind,
            self.unit,
            self.expected_interval_s,
            tuple(self.tags),
            self.location,
        )


class ConfigFile(BaseModel):
    """The YAML named by RISKMON_CONFIG."""

    model_config = ConfigDict(extra="forbid")

    sites: list[SiteIn] = Field(default_factory=list)
    sensors: list[SensorIn] = Field(default_factory=list)
    rules: list[dict[str, object]] = Field(default_factory=list)


class AckIn(BaseModel):
    by: str | None = None
    note: str | None = None


class DisposeIn(BaseModel):
    reason_code: ReasonCode
    note: str = Field(min_length=1)
    by: str | None = None
    force: StrictBool = Field(
        default=False, description="close although the condition still holds (needs a reason)"
    )
    force_reason: str | None = Field(
        default=None, description="why the alert is closed while its condition holds"
    )


class NoteIn(BaseModel):
    by: str | None = None
    note: str | None = None


class CommentIn(BaseModel):
    text: str = Field(min_length=1)
    by: str | None = None


class AssignIn(BaseModel):
    assignee: str = Field(min_length=1)
    by: str | None = None
