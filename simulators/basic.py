"""The basic simulator: reads a riskmon config (sites, sensors), builds a device per sensor and
publishes readings over MQTT on the pinned topic ``riskmon/v1/{tenant}/{site}/readings``."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import orjson
import yaml

from simulators.devices import BASELINES, Device, GasDetector, Steady, TankLevel

log = logging.getLogger("riskmon.simulate")


@dataclass(frozen=True)
class SimOptions:
    host: str = "127.0.0.1"
    port: int = 1883
    interval_s: float = 1.0
    duration_s: float = 0.0  # 0 = run until stopped
    leak_at_s: float | None = 10.0
    overfill_at_s: float | None = 20.0
    seed: int = 7


def build_devices(config: dict[str, object], opts: SimOptions) -> list[tuple[str, str, Device]]:
    """(tenant, site, device) for each sensor; the first combustible-gas detector leaks and
    the first tank overfills."""
    sites = {s["id"]: s for s in config.get("sites", [])}  # type: ignore[attr-defined]
    rng = random.Random(opts.seed)
    out: list[tuple[str, str, Device]] = []
    leaked = overfilled = False
    for sensor in config.get("sensors", []):  # type: ignore[attr-defined]
        sid, site, kind = sensor["id"], sensor["site"], sensor["kind"]
        sub = random.Random(rng.random())
        device: Device
        if kind == "gas_combustible":
            device = GasDetector(sid, leak_at=None if leaked else opts.leak_at_s, rng=sub)
            leaked = True
        elif kind == "tank_level":
            over = None if overfilled else opts.overfill_at_s
            device = TankLevel(sid, overfill_at=over, rng=sub)
            overfilled = True
        else:
            mean, noise = BASELINES.get(kind, (20.0, 0.2))
            device = Steady(sid, mean, noise, rng=sub)
        out.append((sites[site]["tenant"], site, device))
    return out


async def run(config_path: Path, opts: SimOptions) -> int:
    config = yaml.safe_load(config_path.read_text())
    devices = build_devices(config, opts)
    start = time.time()
    sent = 0
    # a client id of its own: two simulators (or the demo's and another) never take over
    # each other's session on the broker
    identifier = f"riskmon-sim-{opts.seed}-{uuid.uuid4().hex[:8]}"
    async with aiomqtt.Client(opts.host, opts.port, identifier=identifier) as client:
        log.info("simulating %d sensors over mqtt://%s:%d", len(devices), opts.host, opts.port)
        while opts.duration_s <= 0 or time.time() - start < opts.duration_s:
            now = time.time()
            by_site: dict[tuple[str, str], list[dict[str, object]]] = {}
            for tenant, site, device in devices:
                reading = {
                    "sensor": device.sensor,
                    "ts": round(now, 3),
                    "value": device.value(now - start),
                }
                by_site.setdefault((tenant, site), []).append(reading)
            for (tenant, site), readings in by_site.items():
                await client.publish(
                    f"riskmon/v1/{tenant}/{site}/readings", orjson.dumps(readings), qos=1
                )
                sent += len(readings)
            await asyncio.sleep(max(0.0, opts.interval_s - (time.time() - now)))
    return sent
