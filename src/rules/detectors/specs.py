"""Detector settings in the rule language (``detectors:`` of an ``anomaly`` rule)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rules.detectors.base import Detector
from rules.detectors.numeric import (
    Cusum,
    DiffZ,
    EwmaZ,
    HoltResidual,
    PatternNN,
    RangeBreakout,
    Stuck,
)
from rules.detectors.riverwrap import AbsoluteDeviation, Adwin, HalfSpaceTrees
from rules.detectors.sequence import ArtCategories, ContextNovelty


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EwmaSpec(_Spec):
    """Distance from the EWMA in EW standard deviations (numpy)."""

    name: Literal["ewma"] = "ewma"
    alpha: float = Field(default=0.01, gt=0, le=1)


class DiffSpec(_Spec):
    """Surprise of the step from the last normal reading (numpy)."""

    name: Literal["diff"] = "diff"
    alpha: float = Field(default=0.01, gt=0, le=1)


class HoltSpec(_Spec):
    """Forecast residual of Holt's level + trend model (numpy)."""

    name: Literal["holt"] = "holt"
    alpha: float = Field(default=0.3, gt=0, le=1)
    beta: float = Field(default=0.05, gt=0, le=1)


class CusumSpec(_Spec):
    """Two-sided CUSUM against a slow baseline, for slow drifts (numpy)."""

    name: Literal["cusum"] = "cusum"
    alpha: float = Field(default=0.002, gt=0, le=1)
    k: float = Field(default=0.5, ge=0)


class RangeSpec(_Spec):
    """A new extreme: a reading beyond the sensor's range by more than ``tol`` of it
    (numpy; already a likelihood score, not calibrated)."""

    name: Literal["range"] = "range"
    tol: float = Field(default=0.02, ge=0)
    alpha: float = Field(default=1e-5, ge=0, le=1)


class StuckSpec(_Spec):
    """A sensor stuck on one value for longer than it has ever been (numpy; already a
    likelihood score, not calibrated)."""

    name: Literal["stuck"] = "stuck"
    min_run: int = Field(default=5, ge=1)
    tol: float = Field(default=0.0, ge=0)


class PatternSpec(_Spec):
    """Nearest-neighbour distance of the latest ``m`` readings (or, with ``block`` seconds,
    the means of the latest ``m`` blocks of that length) to the last ``memory`` normal
    windows and the last ``recall`` anomalous ones (numpy; (memory + recall) x m floats per
    sensor)."""

    name: Literal["pattern"] = "pattern"
    m: int = Field(default=8, ge=2, le=64)
    memory: int = Field(default=1000, ge=16, le=20000)
    recall: int = Field(default=32, ge=1, le=1000)
    alpha: float = Field(default=0.002, gt=0, le=1)
    block: float = Field(default=0.0, ge=0)


class ArtSpec(_Spec):
    """Fuzzy ART categories of the latest ``m`` steps (a power of two) and their Haar
    wavelet details; a window that resonates with no category is novel (numpy;
    ``categories`` x (8m - 4) floats per sensor).  ``block`` as for ``pattern``."""

    name: Literal["art"] = "art"
    m: int = Field(default=8, ge=2, le=64)
    categories: int = Field(default=64, ge=2, le=4096)
    vigilance: float = Field(default=0.9, gt=0, lt=1)
    rate: float = Field(default=1.0, gt=0, le=1)
    alpha: float = Field(default=0.002, gt=0, le=1)
    block: float = Field(default=0.0, ge=0)

    @field_validator("m")
    @classmethod
    def _power_of_two(cls, m: int) -> int:
        if m & (m - 1):
            raise ValueError("m must be a power of two (2, 4, 8, ...)")
        return m


class ContextSpec(_Spec):
    """Contexts of up to ``m`` - 1 quantised steps (levels ``width`` standard deviations
    wide) and the levels that followed them; a step its contexts did not predict is novel
    (numpy; 2 x ``slots`` floats per sensor).  ``block`` as for ``pattern``."""

    name: Literal["context"] = "context"
    m: int = Field(default=4, ge=2, le=16)
    width: float = Field(default=1.0, gt=0)
    slots: int = Field(default=1024, ge=16, le=65536)
    alpha: float = Field(default=0.002, gt=0, le=1)
    block: float = Field(default=0.0, ge=0)


class HstSpec(_Spec):
    """river HalfSpaceTrees over the reading and its step (per-reading Python)."""

    name: Literal["hst"] = "hst"
    n_trees: int = Field(default=10, ge=1)
    height: int = Field(default=8, ge=1)
    window_size: int = Field(default=250, ge=10)
    seed: int = 42


class SadSpec(_Spec):
    """river StandardAbsoluteDeviation (per-reading Python)."""

    name: Literal["sad"] = "sad"


class AdwinSpec(_Spec):
    """river ADWIN adaptive window (per-reading Python)."""

    name: Literal["adwin"] = "adwin"
    delta: float = Field(default=0.002, gt=0, lt=1)


AnyDetectorSpec = (
    EwmaSpec
    | DiffSpec
    | HoltSpec
    | CusumSpec
    | RangeSpec
    | StuckSpec
    | PatternSpec
    | ArtSpec
    | ContextSpec
    | HstSpec
    | SadSpec
    | AdwinSpec
)
DetectorSpec = Annotated[AnyDetectorSpec, Field(discriminator="name")]

# The default set: exact numpy models, cheap enough for every reading of every sensor.
DEFAULT_DETECTORS: tuple[AnyDetectorSpec, ...] = (EwmaSpec(), HoltSpec(), CusumSpec())


def build(spec: AnyDetectorSpec, capacity: int) -> Detector:
    params = spec.model_dump(exclude={"name"})
    if isinstance(spec, HstSpec):
        return HalfSpaceTrees(capacity, **params)
    if isinstance(spec, SadSpec):
        return AbsoluteDeviation(capacity)
    if isinstance(spec, AdwinSpec):
        return Adwin(capacity, **params)
    kinds: dict[str, type[Detector]] = {
        "ewma": EwmaZ,
        "diff": DiffZ,
        "holt": HoltResidual,
        "cusum": Cusum,
        "range": RangeBreakout,
        "stuck": Stuck,
        "pattern": PatternNN,
        "art": ArtCategories,
        "context": ContextNovelty,
    }
    return kinds[spec.name](capacity, **params)
