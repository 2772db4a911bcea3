"""Fault injection (DOMAIN.md §4) on a stream of readings, seeded and reproducible.

Value and time faults change a reading: ``drift``, ``offset`` (a bad zero: a negative one),
``noise``, ``spike`` (``both``: single outliers either way), ``stuck`` (at the first value, or
at ``value``: a 4-20 mA loop drop reads 0), ``false_echo`` (a radar gauge locked on an
obstruction reads ``value`` instead, on a share ``probability`` of the readings),
``water_ingress`` (water in a cable or housing: the reading wanders, a random walk of ``sd``
a reading, drifting by ``per_day``), ``clock_skew``.  Delivery faults change what reaches
riskmon and when: ``dropout`` (random losses), ``offline`` (nothing), ``duplicates``
(``after_s``: a delay, or [shortest, longest] as NB-IoT resends 5-900 s later),
``out_of_order``, ``burst_replay`` (held while disconnected, then sent at once on reconnect)
and ``malformed`` (a broken payload instead of the reading).  A fault applies to one sensor
(or every sensor of a site) from ``start`` to ``end`` seconds after the scenario start.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

FaultKind = Literal[
    "drift", "offset", "noise", "spike", "stuck", "false_echo", "water_ingress", "clock_skew",
    "dropout", "offline", "duplicates", "out_of_order", "burst_replay", "malformed",
]  # fmt: skip
KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]


@dataclass
class Delivery:
    """What reaches riskmon at ``at`` (seconds since start): a reading, or ``raw`` text."""

    at: float
    sensor: str
    ts: float
    value: float
    raw: str | None = None


@dataclass
class Fault:
    kind: str
    start: float
    end: float
    sensor: str | None = None
    site: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; one of {', '.join(KINDS)}")
        if self.sensor is None and self.site is None:
            raise ValueError("a fault names a sensor or a site")

    def covers(self, sensor: str, site: str, t: float) -> bool:
        return (
            (self.sensor in (None, sensor))
            and (self.site in (None, site))
            and (self.start <= t < self.end)
        )


class Injector:
    """Applies faults reading by reading; ``flush`` returns what is due by a time."""

    def __init__(self, faults: list[Fault], seed: int = 1) -> None:
        self.faults = faults
        self.rng = random.Random(seed)
        self.stuck: dict[tuple[int, str], float] = {}
        self.wander: dict[tuple[int, str], float] = {}
        self.held: list[Delivery] = []

    def apply(self, sensor: str, site: str, t: float, value: float, epoch0: float) -> None:
        """One reading at ``t`` seconds since start; its deliveries are held until due."""
        ts = epoch0 + t
        at = t
        out: list[Delivery] = []
        drop = False
        for i, f in enumerate(self.faults):
            if not f.covers(sensor, site, t):
                continue
            p = f.params
            if f.kind == "drift":
                value += p.get("per_day", 1.0) * (t - f.start) / 86400
            elif f.kind == "offset":
                value += p.get("by", 1.0)
            elif f.kind == "noise":
                value += self.rng.gauss(0, p.get("sd", 1.0))
            elif f.kind == "spike" and self.rng.random() < p.get("probability", 0.01):
                value += p.get("by", 50.0) * self.rng.choice((-1, 1) if p.get("both") else (1,))
            elif f.kind == "stuck":  # at the first value, or at ``value`` (a loop drop: 0)
                value = self.stuck.setdefault((i, sensor), p.get("value", value))
            elif f.kind == "false_echo" and self.rng.random() < p.get("probability", 1.0):
                value = p.get("value", 96.0) + self.rng.gauss(0, 0.05)
            elif f.kind == "water_ingress":
                walk = self.wander.get((i, sensor), 0.0) + self.rng.gauss(0, p.get("sd", 0.1))
                self.wander[(i, sensor)] = walk
                value += walk + p.get("per_day", 0.0) * (t - f.start) / 86400
            elif f.kind == "clock_skew":
                ts += p.get("by_s", 60.0)
            elif f.kind == "offline" or (
                f.kind == "dropout" and self.rng.random() < p.get("probability", 0.05)
            ):
                drop = True
            elif f.kind == "burst_replay":
                at = max(at, f.end)  # held while disconnected, sent on reconnect
            elif f.kind == "out_of_order" and self.rng.random() < p.get("probability", 0.1):
                at += p.get("delay_s", 120.0)
            elif f.kind == "duplicates" and self.rng.random() < p.get("probability", 0.1):
                after = p.get("after_s", 30.0)  # seconds, or [shortest, longest]
                if isinstance(after, list):
                    after = self.rng.uniform(*after)
                out.append(Delivery(at + after, sensor, ts, value))
            elif f.kind == "malformed" and self.rng.random() < p.get("probability", 0.05):
                broken = self.rng.choice(
                    [
                        f'{{"sensor": "{sensor}", "ts": {ts}, "value": }}',
                        f'{{"sensor": "{sensor}", "ts": "yesterday", "value": {value}}}',
                        f'{{"sensor": "{sensor}", "value": "n/a"}}',
                    ]
                )
                out.append(Delivery(at, sensor, ts, value, raw=broken))
                drop = True
        if not drop:
            out.append(Delivery(at, sensor, ts, value))
        self.held.extend(out)

    def flush(self, until: float) -> list[Delivery]:
        """Deliveries due at or before ``until``, in delivery order."""
        due = [d for d in self.held if d.at <= until]
        self.held = [d for d in self.held if d.at > until]
        return sorted(due, key=lambda d: d.at)
