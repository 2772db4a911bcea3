"""Rule specifications (the rule language), validated by pydantic.

Rules are written in YAML or JSON.  A rule has an ``id``, a ``type`` and a ``selector`` that
picks the sensors it applies to; thresholds can be overridden per site, per sensor or per tag
inside the same rule, so a tuned sensor keeps its alert fingerprint (rule id + sensor).
"""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, TypeAdapter, model_validator

from monitor.model import Category, Sensor
from rules.detectors.specs import DEFAULT_DETECTORS, AnyDetectorSpec, DetectorSpec

LevelKey = Annotated[int, Field(ge=1, le=4)]
# level -> set-point; JSON object keys are text, so the contract lists the four it takes
LevelMap = Annotated[
    dict[LevelKey, float],
    Field(json_schema_extra={"propertyNames": {"enum": ["1", "2", "3", "4"]}}),
]


class Selector(BaseModel):
    """Which sensors a rule (or an override) applies to.  Every given field must match."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str | None = None
    site: str | None = None
    sensor: str | None = None
    tags: tuple[str, ...] = ()

    def matches(self, sensor: Sensor) -> bool:
        return (
            (self.kind is None or self.kind == sensor.kind)
            and (self.site is None or self.site == sensor.site)
            and (self.sensor is None or self.sensor == sensor.id)
            and all(tag in sensor.tags for tag in self.tags)
        )

    @property
    def specificity(self) -> int:
        """Overrides apply from least to most specific: tags < site < sensor."""
        return (4 if self.sensor else 0) + (2 if self.site else 0) + (1 if self.tags else 0)


class _Base(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:\-]+$")
    description: str = ""
    enabled: StrictBool = True
    selector: Selector = Selector()

    @property
    def fault_holds_red(self) -> bool:
        """Whether this rule's sensor-health verdict holds a process red back (``_Graded``)."""
        return False

    @property
    def fault_suppresses(self) -> bool:
        """Whether this rule's sensor-health verdict suppresses the sensor's process alerts
        below red (``_Graded``)."""
        return False


class ThresholdOverride(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    selector: Selector
    levels: LevelMap | None = None
    deadband: float | None = Field(default=None, ge=0)
    on_delay_s: float | None = Field(default=None, ge=0)
    off_delay_s: float | None = Field(default=None, ge=0)


class _Graded(_Base):
    """Graded levels on one side (high or low) with hysteresis and delays.

    A value is at level L when it is at or beyond ``levels[L]`` (>= for high, <= for low);
    the most severe level reached wins.  An active level holds until the value comes back
    past the set-point by more than ``deadband``.  A raise must hold ``on_delay_s`` and a
    lowering or clearing must hold ``off_delay_s`` (event time) before it takes effect.  An
    alert opens from normal only after ``confirm`` readings in a row beyond a set-point (a
    single wild reading or a one-reading vapour puff opens nothing); an open alert escalates
    at once.
    """

    direction: Literal["high", "low"] = "high"
    levels: LevelMap = Field(min_length=1)
    deadband: float = Field(default=0.0, ge=0)
    on_delay_s: float = Field(default=0.0, ge=0)
    off_delay_s: float = Field(default=0.0, ge=0)
    confirm: int = Field(
        default=1,
        ge=1,
        le=10,
        description="readings in a row beyond a set-point before an alert opens from normal",
    )
    plausible: tuple[float, float] | None = Field(
        default=None,
        description="[lowest, highest] a working sensor can read; a reading outside is not "
        "judged by this rule (a 0 kPa loop drop is a health rule's business, not a pressure "
        "drop)",
    )
    category: Category = Category.PROCESS
    overrides: tuple[ThresholdOverride, ...] = ()
    holds_red: StrictBool | None = Field(
        default=None,
        description="sensor-health rules: while this fault is active on a sensor, a process "
        "red from that sensor is held at orange until it is corroborated or the fault clears; "
        "by default drift and rate health rules and spike rules with 'returns' hold (faults "
        "that make readings look worse); a range threshold does not (an over-range gas "
        "reading may be a real leak), nor a spike without 'returns' (a real step is as far "
        "from the median)",
    )

    suppresses: StrictBool = Field(
        default=False,
        description="sensor-health rules: while this fault is active on a sensor, a process "
        "alert of that sensor that would open below red opens suppressed by design (stored, "
        "off the operators' list, not notified, not in the alarm load) and is shown when the "
        "fault clears while its condition holds, or when it reaches red; for faults that make "
        "the readings meaningless, such as a piezometer wandering with water in its cable",
    )

    @model_validator(mode="after")
    def _suppresses_is_health(self) -> _Graded:
        if self.suppresses and self.category != Category.SENSOR_HEALTH:
            raise ValueError("suppresses applies to sensor_health rules only")
        return self

    @property
    def fault_suppresses(self) -> bool:
        return self.suppresses and self.category == Category.SENSOR_HEALTH

    @property
    def fault_holds_red(self) -> bool:
        if self.category != Category.SENSOR_HEALTH:
            return False
        return self._holds_red_default() if self.holds_red is None else self.holds_red

    def _holds_red_default(self) -> bool:
        """The default of ``holds_red`` for the rule type."""
        return False

    def params_for(self, sensor: Sensor) -> tuple[dict[LevelKey, float], float, float, float]:
        """The levels, deadband, on and off delays in force for one sensor: the rule's own,
        then each matching override from the least to the most specific (tags < site <
        sensor)."""
        levels, db, on, off = dict(self.levels), self.deadband, self.on_delay_s, self.off_delay_s
        for o in sorted(self.overrides, key=lambda o: o.selector.specificity):
            if o.selector.matches(sensor):
                levels = dict(o.levels) if o.levels else levels
                db = o.deadband if o.deadband is not None else db
                on = o.on_delay_s if o.on_delay_s is not None else on
                off = o.off_delay_s if o.off_delay_s is not None else off
        return levels, db, on, off

    @model_validator(mode="after")
    def _check_order(self) -> _Graded:
        check_level_order(self.levels, self.direction)
        for override in self.overrides:
            if override.levels:
                check_level_order(override.levels, self.direction)
        return self


class ReachedRule(_Graded):
    """Graded rules on the reading itself or its rate: they may leave out readings out of a
    working sensor's reach (``rules.reach``)."""

    max_rate: float | None = Field(
        default=None,
        gt=0,
        description="the fastest a working sensor's reading changes, units per hour: a reading "
        "farther from the last one within reach is not judged (a radar gauge's false echo); "
        "rules.reach",
    )
    max_rate_slack: float = Field(
        default=0.0, ge=0, description="the change allowed on top of max_rate: the noise"
    )


class ThresholdRule(ReachedRule):
    """Set-points on the reading itself."""

    type: Literal["threshold"] = "threshold"


class RateRule(ReachedRule):
    """Set-points on the rate of change over ``span_s``, in units per ``per_s`` seconds
    (60: per minute, 3600: per hour, 86400: per day), from the span's end points or, with
    ``method: regression``, from the least-squares slope of all its readings, or with
    ``theil_sen`` the outlier-resistant median slope between its buckets.  ``absolute``
    judges |rate|; a low direction with negative levels catches drops (a pipe pressure
    falling)."""

    type: Literal["rate"] = "rate"
    span_s: float = Field(gt=0)
    per_s: float = Field(default=1.0, gt=0)
    absolute: StrictBool = False
    method: Literal["endpoints", "regression", "theil_sen"] = Field(
        default="endpoints",
        description="endpoints: (last - first) / time; regression: least-squares slope of every"
        " reading in the span (noisy sensors); theil_sen: the median of the slopes between the"
        " span's bucket means, which a single outlier does not move (GNSS)",
    )
    min_points: int = Field(
        default=3,
        ge=2,
        description="regression and theil_sen: judge only when this many buckets of the span "
        "hold readings",
    )
    min_coverage: float = Field(
        default=0.5, gt=0, le=1, description="judge only when history covers this share of span"
    )
    buckets: int = Field(
        default=48,
        ge=4,
        le=4096,
        description="resolution: the span is kept in this many time buckets per sensor; the "
        "start point is the newest first or last reading of a bucket at or before the span",
    )
    held_at: float | None = Field(
        default=None,
        description="judge the rate only while every reading of the span's buckets is at or "
        "beyond this (>= for high, <= for low): 'at least 50 held 60 s while rising'",
    )
    held_s: float | None = Field(
        default=None,
        ge=0,
        description="how long held_at must hold, back from the reading (default: the whole "
        "span; 0: the reading's own bucket - 'at HH and still rising')",
    )

    def _holds_red_default(self) -> bool:
        return True


class WindowRule(_Graded):
    """Set-points on an aggregate (sum, mean, max, min) over a rolling window of event time,
    for example 24 h rainfall; or ``wander``, the way readings travel without getting anywhere
    (a health rule for water in a cable or housing)."""

    type: Literal["window"] = "window"
    window_s: float = Field(gt=0)
    agg: Literal["sum", "mean", "max", "min", "wander"] = Field(
        default="sum",
        description="wander: (sum of |step| - |sum of steps|) / steps, bucket by bucket, over "
        "the differences between successive readings in the window - a reading that wanders as "
        "a random walk scores about its step, a real trend nearly 0, white noise of sd s about "
        "1.1 s",
    )
    min_points: int = Field(
        default=1, ge=1, description="judge only when the window holds this many readings (steps)"
    )
    max_step: float | None = Field(
        default=None,
        gt=0,
        description="wander: a step counts up to this size, so a lone outlier (a jump and its "
        "return) adds at most twice it",
    )
    buckets: int = Field(
        default=96,
        ge=2,
        le=4096,
        description="resolution: the window is kept in this many time buckets per sensor and "
        "covers whole buckets, from window_s to window_s + one bucket back (24 h in 96: 15 min; "
        "12 h in 2: 12 to 18 h)",
    )


class CountStep(BaseModel):
    """``count`` points (or items) at level ``at`` or more severe make level ``to``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: LevelKey
    count: int = Field(ge=1)
    to: LevelKey


class CountRule(_Base):
    """Count escalation (DOMAIN.md 2.2) and corroboration over the levels that ``sources``
    give each sensor.  Points are grouped into monitored items: by site and sensor kind, or by
    site and each tag starting with ``tag_prefix`` (an area).  ``steps`` grade an item;
    ``items_step`` grades the site from its items' levels.  The alert names its points."""

    type: Literal["count"] = "count"
    sources: tuple[str, ...] = Field(min_length=1)
    group_by: Literal["kind", "tag"] = "kind"
    tag_prefix: str | None = None
    steps: tuple[CountStep, ...] = Field(min_length=1)
    items_step: CountStep | None = None
    category: Category = Category.PROCESS

    @model_validator(mode="after")
    def _check_tag(self) -> CountRule:
        if self.group_by == "tag" and not self.tag_prefix:
            raise ValueError("group_by tag needs tag_prefix (for example 'area:')")
        return self


class SpikeRule(_Graded):
    """Spikes (sensor health): how far a reading stands from the median of the previous
    ones in ``window_s``, in robust standard deviations (1.4826 x MAD, at least ``min_scale``).
    Needs ``min_points`` earlier readings."""

    type: Literal["spike"] = "spike"
    window_s: float = Field(gt=0)
    min_points: int = Field(default=5, ge=3)
    min_scale: float = Field(default=1e-6, gt=0)
    max_points: int = Field(
        default=32, ge=3, le=1024, description="the newest earlier readings kept per sensor"
    )
    returns: StrictBool = Field(
        default=False,
        description="a spike only when it stands alone: the readings before and after it are "
        "within half the mildest level's robust z (a step that persists, such as a real "
        "pressure drop, or a fluctuating leak is no spike); judged at the reading after it",
    )
    below: float | None = Field(
        default=None,
        description="judge only while the median of the earlier readings is below this: in "
        "the alarm range a wild reading is the process rules' business (a leak fluctuates)",
    )
    category: Category = Category.SENSOR_HEALTH

    def _holds_red_default(self) -> bool:
        return self.returns


class DriftRule(_Graded):
    """Suspected drift (sensor health): the mean of the last ``window_s`` against the mean of
    the ``baseline_s`` before it; graded on the difference (``absolute`` by default).  A slow
    baseline shift that no single reading shows."""

    type: Literal["drift"] = "drift"
    window_s: float = Field(gt=0)
    baseline_s: float = Field(gt=0)
    absolute: StrictBool = True
    min_points: int = Field(default=5, ge=2)
    below: float | None = Field(
        default=None,
        description="judge only while every reading of the recent window is below this: a "
        "reading in the alarm range is the process rules' business (a leak is not a drift)",
    )
    buckets: int = Field(
        default=120,
        ge=4,
        le=4096,
        description="resolution: window and baseline are kept in this many time buckets per "
        "sensor (30 h in 120: 15 min); both means are over whole buckets",
    )
    category: Category = Category.SENSOR_HEALTH

    def _holds_red_default(self) -> bool:
        return True


class LeakRule(_Graded):
    """Gas leak or biogas (DOMAIN.md 2.4), for methane wells: graded like a threshold on the
    reading, then judged from the last ``window_s`` of the well: a leak fluctuates strongly
    (coefficient of variation >= ``leak_cv``) or is seen by other wells of the zone, and
    raises the level by one; biogas is low and stable (cv < ``biogas_cv``), follows the
    site's temperature (correlation >= ``biogas_corr`` over ``corr_window_s``, sensors of
    ``temperature_kind``) and is held at ``biogas_max_level`` at most, whatever the
    neighbours do.  The alert says why."""

    type: Literal["leak"] = "leak"
    window_s: float = Field(default=3600.0, gt=0, description="window of the variation")
    corr_window_s: float = Field(
        default=86400.0, gt=0, description="window of the correlation with temperature"
    )
    min_points: int = Field(default=6, ge=3)
    leak_cv: float = Field(default=0.25, gt=0)
    biogas_cv: float = Field(default=0.1, gt=0)
    biogas_corr: float = Field(default=0.6, ge=-1, le=1)
    biogas_max_level: LevelKey = 4
    temperature_kind: str = "ambient_temperature"


class FlatlineRule(_Base):
    """Stuck or flatline values (sensor health): no change beyond ``tolerance`` for
    ``factor`` x the sensor's expected interval (event time)."""

    type: Literal["flatline"] = "flatline"
    factor: float = Field(default=10.0, gt=0)
    tolerance: float = Field(default=0.0, ge=0)
    level: LevelKey = 4
    floor: float | None = Field(
        default=None,
        description="a value at or below this may be held without end: a gas detector's "
        "zero suppression (it sends 0 below about 1 %LEL), not a stuck sensor",
    )


class Condition(BaseModel):
    """Holds when some sensor of the site is at level ``at`` or more severe under ``rule``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    at: LevelKey = 4


class AllOf(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    all: tuple[Expr, ...] = Field(min_length=1)


class AnyOf(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    any: tuple[Expr, ...] = Field(min_length=1)


class NotOf(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    not_: Expr = Field(alias="not")


Expr = Condition | AllOf | AnyOf | NotOf


def rules_in(expr: Expr) -> set[str]:
    if isinstance(expr, Condition):
        return {expr.rule}
    if isinstance(expr, NotOf):
        return rules_in(expr.not_)
    parts = expr.all if isinstance(expr, AllOf) else expr.any
    return set().union(*(rules_in(p) for p in parts))


class CompositeRule(_Base):
    """AND/OR/NOT over conditions on the sensors of one site; raises a site alert at
    ``level`` while ``when`` holds.  ``selector.site`` limits it to one site."""

    type: Literal["composite"] = "composite"
    when: Expr
    level: LevelKey = 2
    category: Category = Category.PROCESS


class InterruptionRule(_Base):
    """Data interruption (数据中断): a sensor silent for ``factor`` x its expected interval."""

    type: Literal["interruption"] = "interruption"
    factor: float = Field(default=3.0, gt=0)
    level: LevelKey = 4


class AnomalyRule(_Base):
    """Streaming anomaly detection per sensor (see README, "Anomaly detection").

    Each sensor gets its own clone of every detector in ``detectors``; raw scores are
    calibrated into a likelihood score in [0, 1] (0.5 = a one-in-100,000 event for that
    sensor; ``range`` and ``stuck`` score 1 for what the sensor has never shown) and a
    reading at or above ``threshold`` is anomalous.  On its own an anomaly is
    blue once ``blue_after`` readings in a row are anomalous, and yellow once ``persist``
    are.  With
    ``raise_thresholds``, an anomaly on the same side as an active threshold alert of the
    same sensor raises that alert by one level.  ``shadow`` runs the detectors without
    alerts: scores are recorded and would-be alerts counted."""

    type: Literal["anomaly"] = "anomaly"
    detectors: tuple[DetectorSpec, ...] = Field(default=DEFAULT_DETECTORS, min_length=1)
    threshold: float = Field(default=0.5, gt=0, le=1)
    grace: int = Field(default=100, ge=0, description="readings learnt before judging")
    persist: int = Field(default=3, ge=2, description="anomalous readings in a row for yellow")
    blue_after: int = Field(
        default=1, ge=1, description="anomalous readings in a row for blue (at most persist)"
    )
    adapt_after: int = Field(
        default=10, ge=1, description="anomalous readings in a row after which models learn"
    )
    latch: int = Field(
        default=50, ge=0, description="readings after an episode without a new onset score"
    )
    off_delay_s: float = Field(default=0.0, ge=0)
    shadow: StrictBool = False
    raise_thresholds: StrictBool = True
    category: Category = Category.PROCESS
    floor: float | None = Field(
        default=None,
        description="readings at or below this are normal and neither judged by nor taught "
        "to the models: a gas detector's zero suppression (it sends 0 below about 1 %LEL)",
    )

    def detector_specs(self) -> tuple[AnyDetectorSpec, ...]:
        return tuple(self.detectors)


def check_level_order(levels: dict[LevelKey, float], direction: str) -> None:
    """More severe levels must sit further out: red >= orange >= yellow >= blue for high."""
    ordered = [levels[k] for k in sorted(levels)]
    pairs = list(pairwise(ordered))
    ok = all(a >= b for a, b in pairs) if direction == "high" else all(a <= b for a, b in pairs)
    if not ok:
        side = "decrease" if direction == "high" else "increase"
        raise ValueError(f"levels must {side} from level 1 (red) to level 4 (blue): {levels}")


GradedRule = ThresholdRule | RateRule | WindowRule | SpikeRule | DriftRule | LeakRule
GRADED = (ThresholdRule, RateRule, WindowRule, SpikeRule, DriftRule, LeakRule)
AnyRule = (
    ThresholdRule
    | RateRule
    | WindowRule
    | SpikeRule
    | DriftRule
    | LeakRule
    | InterruptionRule
    | FlatlineRule
    | CountRule
    | CompositeRule
    | AnomalyRule
)
Rule = Annotated[AnyRule, Field(discriminator="type")]
RULE_ADAPTER: TypeAdapter[AnyRule] = TypeAdapter(Rule)
RULES_ADAPTER: TypeAdapter[list[AnyRule]] = TypeAdapter(list[Rule])


def parse_rule(data: object) -> AnyRule:
    """A rule from JSON-like data, with JSON's types: ``false`` is not a number and ``0`` is not
    a boolean (the API's contract says so).  Level keys may be integers (YAML) or text (JSON)."""
    try:
        raw = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:  # not JSON-like (too deep, say): the lax path refuses it
        return RULE_ADAPTER.validate_python(data)
    return RULE_ADAPTER.validate_json(raw, strict=True)
