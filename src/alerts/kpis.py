"""Alarm-load KPIs of ISA-18.2 / EEMUA 191 (DOMAIN.md 4b), from the alerts of a period.

Pure: alerts in, a dict of plain values out; the API (``/api/v1/reports/alarm-load``) and
``riskmon eval scenarios`` both read their alerts from the store and call ``alarm_load``.

- alerts per 10 minutes (aligned 10-minute bins), their mean and maximum;
- floods: a flood starts in a bin with more than 10 alerts and ends at the first bin with
  fewer than 5; the share of the period's time in flood;
- chattering: sources (rule, sensor, site) with 3 or more changes in one minute;
- stale: alerts active for more than 24 h;
- priority mix: blue low, yellow medium, orange and red high (about 80 / 15 / 5 % is the
  target);
- the top bad actors: the sources with the most alerts.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from typing import Any

BIN_S = 600.0
FLOOD_START = 10  # alerts in 10 minutes: more starts a flood
FLOOD_END = 5  # ... fewer ends it
CHATTER_CHANGES = 3  # changes in CHATTER_S: chattering
CHATTER_S = 60.0
PRIORITY = {1: "high", 2: "high", 3: "medium", 4: "low"}

Source = tuple[str, str | None, str]  # rule, sensor, site


@dataclass(frozen=True)
class RaisedAlert:
    """One alert: its source, the most severe level it reached, when it was raised and
    cleared (None: still active), and the event times of its level changes."""

    source: Source
    level: int
    raised: float
    cleared: float | None = None
    changes: tuple[float, ...] = ()


def alarm_load(
    alerts: list[RaisedAlert],
    start: float,
    end: float,
    top: int = 10,
    stale_after_s: float = 86400.0,
) -> dict[str, Any]:
    inside = sorted((a for a in alerts if start <= a.raised < end), key=lambda a: a.raised)
    bins = Counter(BIN_S * (a.raised // BIN_S) for a in inside)
    first, last = BIN_S * (start // BIN_S), BIN_S * ((end - 1e-9) // BIN_S)
    n_bins = max(int((last - first) / BIN_S) + 1, 1)
    floods = _floods(bins)
    flood_s = sum(f["to"] - f["from"] for f in floods)
    by_source = Counter(a.source for a in inside)
    chatter = _chattering(alerts, start, end)
    levels = Counter(PRIORITY.get(a.level, "low") for a in inside)
    total = len(inside)
    return {
        "alerts": total,
        "per_10_minutes": [{"bucket": b, "alerts": n} for b, n in sorted(bins.items())],
        "mean_per_10_minutes": total / n_bins,
        "max_per_10_minutes": max(bins.values(), default=0),
        "floods": floods,
        "percent_time_in_flood": 100.0 * flood_s / max(end - start, BIN_S),
        "chattering": [
            {**_named(s), "alerts": by_source[s], "changes_per_minute": n}
            for s, n in sorted(chatter.items(), key=lambda kv: (-by_source[kv[0]], -kv[1]))
        ],
        "stale": sum(1 for a in alerts if _active_for(a, end) > stale_after_s),
        "priority": {
            p: {"alerts": levels[p], "percent": 100.0 * levels[p] / total if total else 0.0}
            for p in ("low", "medium", "high")
        },
        "bad_actors": [{**_named(s), "alerts": n} for s, n in by_source.most_common(top)],
    }


def _floods(bins: Counter[float]) -> list[dict[str, Any]]:
    """Over the non-empty bins only (a period of years is no loop over its empty bins): a
    gap is an empty bin, which ends a flood."""
    out: list[dict[str, Any]] = []
    flood: dict[str, Any] | None = None
    for b, n in sorted(bins.items()):
        if flood is not None and (b > flood["to"] or n < FLOOD_END):
            out.append(flood)
            flood = None
        if flood is None:
            if n > FLOOD_START:
                flood = {"bucket": b, "from": b, "to": b + BIN_S, "alerts": n}
        elif n >= FLOOD_END:
            flood["to"], flood["alerts"] = b + BIN_S, flood["alerts"] + n
    if flood is not None:
        out.append(flood)
    return out


def _chattering(alerts: list[RaisedAlert], start: float, end: float) -> dict[Source, int]:
    """Per source, the most changes in any one minute, where that is CHATTER_CHANGES or
    more."""
    changes: dict[Source, list[float]] = {}
    for a in alerts:
        changes.setdefault(a.source, []).extend(t for t in a.changes if start <= t < end)
    out = {}
    for source, times in changes.items():
        times.sort()
        most = max((bisect_left(times, t + CHATTER_S) - i for i, t in enumerate(times)), default=0)
        if most >= CHATTER_CHANGES:
            out[source] = most
    return out


def _active_for(alert: RaisedAlert, end: float) -> float:
    return (end if alert.cleared is None else min(alert.cleared, end)) - alert.raised


def _named(source: Source) -> dict[str, Any]:
    rule, sensor, site = source
    return {"rule": rule, "sensor": sensor, "site": site}
