"""A city's stream and the processes that judge it, for the fault probes: deterministic methane
wells (most quiet, some rising through every level), riskmon as its own process, started,
SIGKILLed and restarted, and what it stored, to compare with a clean run."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import text

from monitor.devservices import free_port
from monitor.store.db import open_engine
from tests.integration.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_790_000_000.0


def write_config(path: Path, zones: int, wells: int, every_type: bool = False) -> None:
    """``zones`` gas-network zones (sites) of ``wells`` methane wells each.  ``every_type``:
    a rule of every per-sensor type on the wells too (windows sized to the stream's 100 s),
    and an ambient temperature sensor per zone for the leak rule."""
    sites = [
        {"id": f"z{i:03d}", "name": f"zone {i}", "tenant": "city", "kind": "gas_network_zone"}
        for i in range(zones)
    ]
    sensors = [
        {
            "id": f"z{i:03d}-w{j}",
            "site": f"z{i:03d}",
            "kind": "methane_well",
            "unit": "%LEL",
            "expected_interval_s": 1e7,
        }
        for i in range(zones)
        for j in range(wells)
    ]
    rules = [
        {
            "id": "methane_well.high",
            "type": "threshold",
            "selector": {"kind": "methane_well"},
            "levels": {4: 5, 3: 10, 2: 20, 1: 50},
            "deadband": 1,
        },
        {
            "id": "methane_well.corroborated",
            "type": "count",
            "sources": ["methane_well.high"],
            "steps": [{"at": 3, "count": 2, "to": 2}],
        },
    ]
    if every_type:
        sensors += [
            {"id": f"z{i:03d}-temp", "site": f"z{i:03d}", "kind": "ambient_temperature",
             "unit": "°C", "expected_interval_s": 1e7}
            for i in range(zones)
        ]  # fmt: skip
        rules += EVERY_TYPE
    path.write_text(yaml.safe_dump({"sites": sites, "sensors": sensors, "rules": rules}))


WELLS = {"kind": "methane_well"}
EVERY_TYPE: list[dict[str, Any]] = [
    {"id": "w.leak", "type": "leak", "selector": WELLS, "levels": {4: 5, 3: 10, 2: 20, 1: 50},
     "window_s": 30, "corr_window_s": 60, "min_points": 4},
    {"id": "w.rate", "type": "rate", "selector": WELLS, "span_s": 20, "per_s": 1,
     "absolute": True, "levels": {4: 0.5, 3: 1, 2: 2}},
    {"id": "w.slope", "type": "rate", "selector": WELLS, "span_s": 20, "per_s": 1,
     "method": "regression", "levels": {4: 0.5, 3: 1}},
    {"id": "w.sum", "type": "window", "selector": WELLS, "window_s": 30, "agg": "sum",
     "levels": {4: 100, 3: 400, 2: 1000}},
    {"id": "w.max", "type": "window", "selector": WELLS, "window_s": 30, "agg": "max",
     "levels": {4: 30, 3: 55}},
    {"id": "w.spike", "type": "spike", "selector": WELLS, "window_s": 50, "levels": {4: 6}},
    {"id": "w.drift", "type": "drift", "selector": WELLS, "window_s": 10, "baseline_s": 30,
     "levels": {4: 3, 3: 10}},
    {"id": "w.flat", "type": "flatline", "selector": WELLS, "factor": 1e-6, "tolerance": 0.0},
    {"id": "w.anomaly", "type": "anomaly", "selector": WELLS, "grace": 10, "adapt_after": 5,
     "latch": 10, "detectors": [{"name": "ewma"}, {"name": "range"}]},
]  # fmt: skip


@dataclass(frozen=True)
class City:
    """``sites`` zones of ``per_site`` wells, ``readings`` per well, ``per_message`` readings
    in one message (one site's wells, consecutive times)."""

    sites: int
    per_site: int
    readings: int
    per_message: int
    temperature: bool = False  # an ambient temperature sensor per zone reports too

    @property
    def total(self) -> int:
        return self.sites * (self.per_site + self.temperature) * self.readings

    def value(self, i: int, j: int, k: int) -> float:
        """Most wells quiet, every seventh rises through blue/yellow/orange/red and back."""
        base = 1.0 + 0.5 * math.sin(k / 7 + j)
        if (i * self.per_site + j) % 7 == 0:
            return round(base + 60 * math.sin(math.pi * k / self.readings) ** 2, 3)
        return round(base, 3)

    def stream(self) -> list[tuple[str, Any]]:
        records = []
        step = self.per_message // self.per_site
        for k0 in range(0, self.readings, step):
            for i in range(self.sites):
                batch = [
                    {"sensor": f"z{i:03d}-w{j}", "ts": T0 + k, "value": self.value(i, j, k)}
                    for k in range(k0, min(k0 + step, self.readings))
                    for j in range(self.per_site)
                ]
                if self.temperature:
                    batch += [
                        {"sensor": f"z{i:03d}-temp", "ts": T0 + k,
                         "value": round(18 + 3 * math.sin(k / 15 + i), 3)}
                        for k in range(k0, min(k0 + step, self.readings))
                    ]  # fmt: skip
                records.append((f"z{i:03d}", batch))
        return records


def env(db: str, config: Path, **settings: str) -> dict[str, str]:
    """The environment of a riskmon process: ``settings`` by their RISKMON_ names, lower case
    and without the prefix (``kafka_topic="..."``)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("RISKMON_")}
    return {
        **base,
        "RISKMON_DATABASE_URL": db,
        "RISKMON_MQTT_URL": "",
        "RISKMON_CONFIG": str(config),
        "RISKMON_HTTP_PORT": str(free_port()),
        "RISKMON_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "RISKMON_SNAPSHOT_INTERVAL_S": "1",
        "RISKMON_LOG_LEVEL": "WARNING",
        "RISKMON_RULE_PACKS": '["common"]',
        **{f"RISKMON_{k.upper()}": v for k, v in settings.items()},
    }


def kafka_env(db: str, bootstrap: str, topic: str, group: str, config: Path) -> dict[str, str]:
    return env(
        db,
        config,
        kafka_bootstrap_servers=bootstrap,
        kafka_topic=topic,
        kafka_dlq_topic=f"{topic}.dlq",
        kafka_group_id=group,
    )


async def start(environ: dict[str, str], role: str = "processor") -> asyncio.subprocess.Process:
    """riskmon as its own process; its log goes to ``PROBE_LOG`` (appended) when that is set,
    to find out afterwards why a run differed."""
    log = os.environ.get("PROBE_LOG")
    if log:
        environ = {**environ, "RISKMON_LOG_LEVEL": "INFO"}
    out = os.open(log or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:  # the child keeps its own copy of the descriptor
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "monitor.cli",
            "serve",
            "--role",
            role,
            env=environ,
            cwd=ROOT,
            stdout=out,
            stderr=out,
        )
    finally:
        os.close(out)


async def restart(environ: dict[str, str], role: str = "processor") -> asyncio.subprocess.Process:
    """Start again after a kill, on a new HTTP port: the old one, picked free before the first
    start, may since be the local port of someone's outgoing connection ("address already in
    use"), and the process would exit at once."""
    return await start({**environ, "RISKMON_HTTP_PORT": str(free_port())}, role)


async def subscribed(environ: dict[str, str], timeout: float = 60) -> None:
    """Wait until the process started with ``environ`` is ready and subscribed to MQTT
    (messages published before that reach no session: a fixed sleep loses them on a slow
    start)."""
    url = f"http://127.0.0.1:{environ['RISKMON_HTTP_PORT']}/readyz"

    async def ready() -> bool:
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                answer = await http.get(url)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200 and answer.json()["checks"].get("mqtt") == "ok"

    await wait_for(ready, timeout=timeout, interval=0.1)


async def migrate(environ: dict[str, str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor.cli",
        "migrate",
        env=environ,
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
    )
    assert await proc.wait() == 0


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def scalar(db: str, sql: str) -> Any:
    async with open_engine(db) as engine, engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar_one()


async def alert_set(db: str) -> set[tuple[Any, ...]]:
    async with open_engine(db) as engine, engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id, rule, sensor, opened_at, level, peak_level, state, active FROM alerts")
        )
        return {tuple(r) for r in rows}


async def event_set(db: str) -> set[tuple[Any, ...]]:
    async with open_engine(db) as engine, engine.connect() as conn:
        rows = await conn.execute(text("SELECT alert_id, kind, level, ts FROM alert_events"))
        return {tuple(r) for r in rows}


async def stored(db: str) -> int:
    return int(await scalar(db, "SELECT count(*) FROM readings"))


async def distinct_stored(db: str) -> int:
    sql = "SELECT count(*) FROM (SELECT DISTINCT sensor_key, ts FROM readings) x"
    return int(await scalar(db, sql))


def differences(got: set[tuple[Any, ...]], want: set[tuple[Any, ...]]) -> str:
    """The first events or alerts that differ, for an assertion message."""
    extra, missing = sorted(got - want, key=str), sorted(want - got, key=str)
    return f"{len(extra)} extra, e.g. {extra[:3]}; {len(missing)} missing, e.g. {missing[:3]}"
