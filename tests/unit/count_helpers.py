"""An engine over given rules and sensors (unit tests of group rules)."""

from __future__ import annotations

from monitor.model import Sensor, Site, SiteKind
from monitor.registry import Registry
from rules.engine import RuleEngine
from rules.spec import RULES_ADAPTER


def engine(rules: list[dict[str, object]], sensors: list[Sensor]) -> RuleEngine:
    reg = Registry()
    for site in sorted({s.site for s in sensors}):
        reg.add_site(Site(site, site, "t", SiteKind.TAILINGS_DAM))
    for key, sensor in enumerate(sensors, start=1):
        reg.add_sensor(sensor, key)
    eng = RuleEngine(reg, 0)
    for rule in RULES_ADAPTER.validate_python(rules):
        eng.upsert(rule, 0)
    return eng
