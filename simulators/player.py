"""``riskmon simulate --scenario``: play a scenario's deliveries over a transport, and
``riskmon simulate --load``: N sensors at a rate, in batches, for a duration, with progress.

A scenario starts at wall-clock time now (its timeline is shifted so that riskmon sees current
readings) and runs ``speed`` times faster than real time (0: as fast as possible)."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from simulators.scenario import Scenario, seconds
from simulators.transport import HttpTransport, KafkaTransport, MqttTransport

AnyTransport = MqttTransport | KafkaTransport | HttpTransport


class Progress:
    """One line of progress on stderr, at most once a second."""

    def __init__(self, total: float, unit: str) -> None:
        self.total, self.unit = total, unit
        self.started = self.shown = time.monotonic()
        self.sent = 0

    def add(self, n: int, done: float) -> None:
        self.sent += n
        now = time.monotonic()
        if now - self.shown >= 1.0:
            self.shown = now
            rate = self.sent / max(now - self.started, 1e-9)
            share = 100 * done / self.total if self.total else 100.0
            print(
                f"\r  {share:5.1f} %  {self.sent:,} readings sent  {rate:,.0f}/s",
                end="", file=sys.stderr, flush=True,
            )  # fmt: skip

    def finish(self) -> None:
        elapsed = time.monotonic() - self.started
        print(
            f"\r  100.0 %  {self.sent:,} readings in {elapsed:.1f} s "
            f"({self.sent / max(elapsed, 1e-9):,.0f}/s)",
            file=sys.stderr,
        )


async def play_scenario(path: Path, transport: AnyTransport, speed: float) -> int:
    scenario = Scenario.load(path)
    shift = time.time() - scenario.epoch0 - seconds(scenario.duration)  # ends now-ish
    progress = Progress(seconds(scenario.duration), "s")
    began = time.monotonic()
    for t, delivered, messages in scenario.messages(shift):
        if speed > 0:
            await asyncio.sleep(max(0.0, t / speed - (time.monotonic() - began)))
        for tenant, site, payload in messages:
            await transport.send(tenant, site, payload)
        progress.add(delivered, t)
    progress.finish()
    return progress.sent


@dataclass
class LoadOptions:
    sensors: int
    rate: float  # readings per second
    batch: int  # readings per message
    duration_s: float
    sites: int = 100
    tenant: str = "load"
    seed: int = 1


def load_config(opts: LoadOptions) -> dict[str, object]:
    """The sites and sensors of a load run, for riskmon's configuration file."""
    return {
        "sites": [
            {"id": f"ld{s:04d}", "name": f"load {s}", "tenant": opts.tenant,
             "kind": "gas_network_zone"}
            for s in range(opts.sites)
        ],
        "sensors": [
            {"id": f"ld{i % opts.sites:04d}-s{i:06d}", "site": f"ld{i % opts.sites:04d}",
             "kind": "methane_well", "unit": "%LEL", "expected_interval_s": 3600}
            for i in range(opts.sensors)
        ],
    }  # fmt: skip


async def play_load(opts: LoadOptions, transport: AnyTransport) -> int:
    """Readings from ``sensors`` sensors, ``batch`` per message (one site per message), at
    ``rate`` readings per second for ``duration_s``."""
    rng = random.Random(opts.seed)
    per_site = [
        [f"ld{s:04d}-s{i:06d}" for i in range(s, opts.sensors, opts.sites)]
        for s in range(opts.sites)
    ]
    progress = Progress(opts.duration_s, "s")
    began = time.monotonic()
    cursor = 0
    while (elapsed := time.monotonic() - began) < opts.duration_s:
        due = int(elapsed * opts.rate) - progress.sent
        if due < opts.batch:
            await asyncio.sleep(min(0.01, opts.batch / max(opts.rate, 1.0)))
            continue
        site = cursor % opts.sites
        sensors = per_site[site]
        now = time.time()
        readings = [
            {"sensor": sensors[(cursor // opts.sites + k) % len(sensors)], "ts": round(now, 6),
             "value": round(0.5 + 0.1 * rng.random(), 3)}
            for k in range(opts.batch)
        ]  # fmt: skip
        # Distinct sensors per message keep (sensor, ts) unique.
        unique = list({r["sensor"]: r for r in readings}.values())
        await transport.send(opts.tenant, f"ld{site:04d}", orjson.dumps(unique))
        progress.add(len(unique), elapsed)
        cursor += 1
    progress.finish()
    return progress.sent
