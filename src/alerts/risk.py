"""Dynamic risk assessment (动态评估): a live risk level for each site, and roll-ups.  Pure:
the site, its active alerts, its sensor count and its recent history in, the risk out; time
is passed in.

The base level comes from a risk matrix: the site's inherent grade (its hazard grade, 1-4)
against the worst active process warning (red .. blue, or none).  Adjustments raise it, each
by whole levels, never past red and never more than ``max_raise`` levels over the base:

- blind monitoring: at least ``blind_share`` of the site's sensors are offline, stuck or in
  fault (an active data-interruption or sensor-health alert): a site whose sensors are blind
  is not "green";
- an overdue disposal: a process warning escalated past the enterprise tier (its SLA);
- recent real hazards: at least ``recent_real_hazards`` warnings closed as real hazards in the
  last 7 days.

The score (0-100) orders sites within a level: the level's band, moved inside it by the
number and age of the warnings and the 30-day history.  The explanation lists each factor's
contribution in words.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, field_validator

from alerts.model import Alert
from monitor.model import Category, Level, Site, SiteKind

NAMES = {1: "重大 red", 2: "较大 orange", 3: "一般 yellow", 4: "低 blue"}
WARNING_NAMES = {1: "red", 2: "orange", 3: "yellow", 4: "blue", 5: "none"}
# grade (row 1..4) x worst active process warning (red, orange, yellow, blue, none) -> risk
DEFAULT_MATRIX = (
    (1, 1, 2, 3, 4),
    (1, 2, 2, 3, 4),
    (1, 2, 3, 4, 4),
    (1, 3, 4, 4, 4),
)
# each level's score band [low, high): red 75-100, orange 50-75, yellow 25-50, blue 0-25
BANDS = {1: 75.0, 2: 50.0, 3: 25.0, 4: 0.0}


RiskLevel = Annotated[StrictInt, Field(ge=1, le=4)]
Row = tuple[RiskLevel, RiskLevel, RiskLevel, RiskLevel, RiskLevel]


class RiskModel(BaseModel):
    """Every weight of the model; one per site kind (``RiskModels``).  The matrix must be
    monotone: a more severe warning, or a higher inherent hazard (a lower grade), never gives
    a lower risk."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    matrix: tuple[Row, Row, Row, Row] = Field(
        default=DEFAULT_MATRIX,
        description="grade 1..4 (rows) x worst warning red .. blue, none (columns) -> risk 1..4",
    )
    ungraded: StrictInt = Field(default=3, ge=1, le=4, description="the grade of a site with none")
    blind_share: StrictFloat = Field(
        default=0.25, gt=0, le=1, description="share of blind sensors that raises one level"
    )
    recent_real_hazards: StrictInt = Field(
        default=1,
        ge=1,
        le=10_000,
        description="real hazards handled in 7 days that raise one level",
    )
    max_raise: StrictInt = Field(
        default=2, ge=0, le=3, description="most levels the adjustments add"
    )

    @field_validator("matrix")
    @classmethod
    def _monotone(cls, m: tuple[Row, ...]) -> tuple[Row, ...]:
        for g, row in enumerate(m):
            if any(row[w] > row[w + 1] for w in range(4)):
                raise ValueError(f"grade {g + 1}: a less severe warning gives a higher risk")
            if g and any(m[g - 1][w] > row[w] for w in range(5)):
                raise ValueError(f"grade {g + 1} is riskier than grade {g} for one warning")
        return m


def severe_part(model: RiskModel) -> tuple[Any, ...]:
    """What can make or unmake a red risk: the matrix cells at red and every adjustment.  A
    change to these needs a second person's approval (as red set-points do)."""
    red = tuple((g, w) for g, row in enumerate(model.matrix) for w, v in enumerate(row) if v == 1)
    return red, model.ungraded, model.blind_share, model.recent_real_hazards, model.max_raise


@dataclass(frozen=True)
class RiskModels:
    """The model of each site kind (``by_kind``, else ``default``) and their versions."""

    default: RiskModel = field(default_factory=RiskModel)
    by_kind: dict[SiteKind, RiskModel] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)  # "default" or a kind -> version

    def for_kind(self, kind: SiteKind) -> RiskModel:
        return self.by_kind.get(kind, self.default)

    def get(self, name: str) -> RiskModel:
        return self.default if name == "default" else self.for_kind(SiteKind(name))

    def with_model(self, name: str, model: RiskModel, version: int) -> RiskModels:
        """A new value with ``name`` ("default" or a site kind) replaced."""
        versions = {**self.versions, name: version}
        if name == "default":
            return RiskModels(model, dict(self.by_kind), versions)
        return RiskModels(self.default, {**self.by_kind, SiteKind(name): model}, versions)


@dataclass(frozen=True)
class History:
    """A site's process warnings opened, and closed as real hazards, in the last 7 and 30 days."""

    warnings_7d: int = 0
    warnings_30d: int = 0
    real_hazards_7d: int = 0
    real_hazards_30d: int = 0


@dataclass(frozen=True)
class Factor:
    name: str  # grade, warning, blind, overdue, history
    value: Any
    levels: int  # how many levels it raised the risk (0: none)
    score: float  # its points in the score
    words: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "factor": self.name,
            "value": self.value,
            "levels": self.levels,
            "score": round(self.score, 2),
            "explanation": self.words,
        }


@dataclass(frozen=True)
class SiteRisk:
    site: str
    tenant: str
    kind: SiteKind
    level: int  # 1 red .. 4 blue
    score: float
    factors: tuple[Factor, ...]
    at: float

    @property
    def name(self) -> str:
        return NAMES[self.level]

    def as_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "tenant": self.tenant,
            "kind": str(self.kind),
            "level": self.level,
            "level_name": self.name,
            "score": round(self.score, 2),
            "factors": [f.as_dict() for f in self.factors],
            "at": self.at,
        }


def assess(
    site: Site,
    alerts: Iterable[Alert],
    sensors: int,
    history: History,
    now: float,
    models: RiskModels | None = None,
) -> SiteRisk:
    """The risk of ``site`` at ``now`` from its active ``alerts`` (others are ignored) and its
    number of ``sensors``."""
    model = (models or RiskModels()).for_kind(site.kind)
    mine = [a for a in alerts if a.site == site.id and a.active and not a.retrospective]
    process = [
        a
        for a in mine
        if a.category == Category.PROCESS and a.level != Level.CLEAR and not a.suppressed
    ]
    grade = site.hazard_grade or model.ungraded
    worst = min((int(a.level) for a in process), default=5)
    base = model.matrix[grade - 1][worst - 1]
    factors = [
        Factor(
            "grade",
            grade,
            0,
            0.0,
            f"inherent grade {grade}"
            + ("" if site.hazard_grade else " (none recorded: taken as " + str(grade) + ")"),
        ),
        Factor(
            "warning",
            WARNING_NAMES[worst],
            0,
            0.0,
            f"risk matrix: grade {grade} with "
            + ("no active process warning" if worst == 5 else f"a {WARNING_NAMES[worst]} warning")
            + f" gives {NAMES[base]}",
        ),
    ]
    blind = {a.sensor for a in mine if a.category != Category.PROCESS and a.sensor is not None}
    share = len(blind) / sensors if sensors else 0.0
    overdue = [a for a in process if a.tier > 0]
    raisers = [
        (sensors > 0 and share >= model.blind_share, "blind", round(share, 3),
         f"{len(blind)} of {sensors} sensors offline, stuck or in fault"
         f" ({share:.0%} >= {model.blind_share:.0%})"),
        (bool(overdue), "overdue", len(overdue),
         f"{len(overdue)} warning(s) not disposed in time (escalated to tier"
         f" {max((a.tier for a in overdue), default=0)})"),
        (history.real_hazards_7d >= model.recent_real_hazards, "history",
         history.real_hazards_7d, f"{history.real_hazards_7d} real hazard(s) handled in the last"
         " 7 days"),
    ]  # fmt: skip
    for hit, name, value, words in raisers:
        if hit:
            factors.append(Factor(name, value, 1, 0.0, f"{words}: one level up"))
    raises = sum(1 for hit, *_ in raisers if hit)
    level = max(1, base - min(raises, model.max_raise))
    if raises > model.max_raise:
        factors.append(
            Factor("cap", model.max_raise, 0, 0.0, f"raised at most {model.max_raise} levels")
        )
    # the score inside the level's band: warnings, their age, the 30-day history
    waited_h = sum(max(0.0, now - (a.raised_at or a.opened_at)) for a in process) / 3600
    points = {
        "active warnings": min(10.0, 2.5 * len(process)),
        "hours waited": min(7.5, waited_h / 4),
        "30-day history": min(7.5, 0.5 * history.warnings_30d + 2.5 * history.real_hazards_30d),
    }
    inside = sum(points.values())
    factors.append(
        Factor(
            "score",
            round(inside, 2),
            0,
            inside,
            "within the level: " + ", ".join(f"{k} {v:.1f}" for k, v in points.items() if v)
            if inside
            else "within the level: nothing active or recent",
        )
    )
    score = BANDS[level] + min(24.99, inside)
    return SiteRisk(site.id, site.tenant, site.kind, level, score, tuple(factors), now)


@dataclass(frozen=True)
class RollUp:
    """The worst level and the number of sites per level under one key (a tenant, a district,
    the city)."""

    key: str
    level: int
    score: float  # the highest site score
    sites: int
    per_level: dict[int, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "level": self.level,
            "level_name": NAMES[self.level],
            "score": round(self.score, 2),
            "sites": self.sites,
            "per_level": {str(k): v for k, v in sorted(self.per_level.items())},
        }


def roll_up(risks: Iterable[tuple[str, SiteRisk]]) -> list[RollUp]:
    """(key, site risk) pairs -> one roll-up per key, worst first."""
    groups: dict[str, list[SiteRisk]] = {}
    for key, risk in risks:
        groups.setdefault(key, []).append(risk)
    out = []
    for key, items in groups.items():
        per = {lv: sum(1 for r in items if r.level == lv) for lv in (1, 2, 3, 4)}
        out.append(
            RollUp(
                key,
                min(r.level for r in items),
                max(r.score for r in items),
                len(items),
                {k: v for k, v in per.items() if v},
            )
        )
    return sorted(out, key=lambda r: (r.level, -r.score, r.key))


@dataclass(frozen=True)
class Hold:
    """Noise control for risk notifications: a site's new level is notified only once it has
    held for ``hold_s``; the first level seen of a site is its baseline (never notified).
    ``pending``: site -> (level, since); ``notified``: site -> the last level told."""

    pending: dict[str, tuple[int, float]] = field(default_factory=dict)
    notified: dict[str, int] = field(default_factory=dict)


def hold_step(
    state: Hold, levels: dict[str, int], now: float, hold_s: float
) -> tuple[Hold, list[str]]:
    """``levels``: the sites assessed now and their level.  The new state, and the sites whose
    level is to be notified now: changed from the last told, and held for ``hold_s`` (a level
    pending since before a new assessment held until it: it is released first)."""
    pending, notified = dict(state.pending), dict(state.notified)
    due: list[str] = []

    def release() -> None:
        for site in sorted(s for s, (_, since) in pending.items() if now - since >= hold_s):
            notified[site] = pending.pop(site)[0]
            due.append(site)

    release()
    for site, level in levels.items():
        if site not in notified:
            notified[site] = level
        elif level == notified[site]:
            pending.pop(site, None)  # back where it was: nothing to tell
        elif pending.get(site, (None, 0.0))[0] != level:
            pending[site] = (level, now)
    release()
    return Hold(pending, notified), due
