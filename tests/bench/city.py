"""The city mix and the steady state (``make bench``), with every shipped pack on.

A city of every kind in DOMAIN.md in realistic proportions: hazardous-chemicals sites (tanks:
level, temperature, pressure; combustible and toxic gas detectors), tailings dams and open-pit
slopes, city-gas zones (methane wells, one with ambient temperature, and pipe pressure).
Values come from ``simulators.physics`` with hazards switched on for a few per cent of the
devices (overfill, leaks, storms, instability, biogas), so thresholds are crossed and alerts
open, escalate and clear.

- ``--mode mix``: readings/s stored end to end, through Kafka (a processor) and through MQTT
  with batched payloads (a single node), every sensor one reading a minute of event time; then
  event-to-alert latency (p50, p99) over MQTT at half the measured MQTT rate: every tenth of a
  second a probe gas detector crosses red, and the time from its publication to the alert on
  the live stream is one sample.
- ``--mode steady``: ``--sensors`` of the mix at their realistic intervals, ``--hours`` of event
  time replayed through Kafka in event-time order, so every rule window fills; readings/s over
  the first and the last hour of event time, and the resident memory per sensor at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import orjson
import yaml
from aiokafka import AIOKafkaProducer

from monitor import devservices
from monitor.testing import temporary_database
from rules.statecodec import decode_state
from simulators.physics import GasDetector, GasPipe, GasWell, Model, Slope, TailingsDam, Tank
from tests.bench.e2e import count, migrate, riskmon_env, serve, stop, wait_ready
from tests.bench.latency_memory import TOKEN, rss_kib

PACKS = '["common", "hazchem", "tailings", "mine_slope", "city_gas"]'
# seconds between readings, by sensor kind (what such devices report in the field)
INTERVAL = {
    "gas_combustible": 30, "gas_toxic": 30, "tank_level": 60, "tank_temperature": 60,
    "tank_pressure": 60, "phreatic_depth": 600, "surface_displacement": 600, "rainfall": 600,
    "freeboard": 600, "dry_beach_length": 600, "slope_displacement": 600, "crack_width": 600,
    "methane_well": 300, "ambient_temperature": 300, "pipe_pressure": 60,
}  # fmt: skip
HAZARD_SHARE = 0.04
WARMUP_S = 2.0  # seconds of stream before the first latency probe


@dataclass
class Device:
    site: str
    tenant: str
    model: Model


def _site(kind: str, i: int) -> tuple[str, str, list[Model]]:
    """One site of a kind: its id, its enterprise, its devices."""
    sid = f"{kind[:2]}{i:04d}"
    if kind == "major_hazard_source":
        tanks: list[Model] = [Tank(f"{sid}-t{j}", seed=i) for j in range(4)]
        gas: list[Model] = [
            GasDetector(f"{sid}-g{j}", seed=i, tags=(f"area:{j // 3}",)) for j in range(6)
        ]
        toxic: list[Model] = [
            GasDetector(f"{sid}-h{j}", seed=i, kind="gas_toxic", unit="ppm", background=1.0,
                        noise=0.3, tags=("h2s",))
            for j in range(2)
        ]  # fmt: skip
        return sid, f"chem-{i % 40}", tanks + gas + toxic
    if kind == "tailings_dam":
        return sid, f"mine-{i % 20}", [TailingsDam(sid, seed=i)]
    if kind == "open_pit_slope":
        return sid, f"mine-{i % 20}", [Slope(sid, seed=i, points=4)]
    wells: list[Model] = [
        GasWell(f"{sid}-w{j}", seed=i, with_temperature=(j == 0)) for j in range(20)
    ]
    return sid, "city-gas", [*wells, GasPipe(f"{sid}-p0", seed=i), GasPipe(f"{sid}-p1", seed=i)]


def city(sensors: int, seed: int = 1) -> list[Device]:
    """About ``sensors`` sensors: 35 % hazardous chemicals, 15 % mines and dams, 50 % city
    gas (by sensors), hazards on a few per cent of the devices."""
    plan = [("major_hazard_source", 0.35 / 18), ("tailings_dam", 0.10 / 10),
            ("open_pit_slope", 0.05 / 5), ("gas_network_zone", 0.50 / 23)]  # fmt: skip
    rng = random.Random(seed)
    devices: list[Device] = []
    for kind, per_sensor in plan:
        for i in range(max(1, round(sensors * per_sensor))):
            sid, tenant, models = _site(kind, i)
            devices += [Device(sid, tenant, m) for m in models]
    for d in devices:
        if rng.random() < HAZARD_SHARE:
            _hazard(d.model, rng)
    return devices


def _hazard(model: Model, rng: random.Random) -> None:
    at = rng.uniform(600, 3 * 3600)
    if isinstance(model, Tank):
        model.hazard("overfill", at)
    elif isinstance(model, GasDetector):
        model.hazard("leak", at, peak=rng.choice([15.0, 30.0, 60.0]), rise_s=300)
    elif isinstance(model, TailingsDam):
        model.hazard("rain", at, mm_per_h=rng.choice([10.0, 30.0]), hours=6)
    elif isinstance(model, Slope):
        model.hazard("instability", at, failure_after_s=2 * 86400)
    elif isinstance(model, GasWell):
        model.hazard(rng.choice(["leak", "biogas"]), at)
    elif isinstance(model, GasPipe):
        model.hazard("leak", at, drop=80.0)


def write_config(path: Path, devices: list[Device]) -> int:
    sites: dict[str, dict[str, Any]] = {}
    sensors = []
    kinds = {Tank: "major_hazard_source", GasDetector: "major_hazard_source",
             TailingsDam: "tailings_dam", Slope: "mine"}  # fmt: skip
    for d in devices:
        kind = kinds.get(type(d.model), "gas_network_zone")
        sites.setdefault(d.site, {"id": d.site, "name": d.site, "tenant": d.tenant, "kind": kind})
        for s in d.model.sensors():
            sensors.append({"id": s.id, "site": d.site, "kind": s.kind, "unit": s.unit,
                            "expected_interval_s": INTERVAL[s.kind], "tags": list(s.tags)})  # fmt: skip
    path.write_text(yaml.safe_dump({"sites": list(sites.values()), "sensors": sensors}))
    return len(sensors)


def readings(
    devices: list[Device], start: float, seconds: float, every: float | None
) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    """(tenant, site, readings) messages in event-time order: one message per site and step.
    ``every``: one interval for all (the mix); None: each kind at its own interval."""
    step = every or 30.0
    specs = [(d, d.model.sensors()) for d in devices]
    t = 0.0
    while t < seconds:
        by_site: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for d, sensors in specs:
            due = [every is not None or t % INTERVAL[s.kind] == 0 for s in sensors]
            if not any(due):
                continue
            values = d.model.step(t)
            batch = by_site.setdefault((d.tenant, d.site), [])
            for s, v, ok in zip(sensors, values, due, strict=True):
                if ok:
                    batch.append({"sensor": s.id, "ts": start + t, "value": round(v, 4)})
        for (tenant, site), batch in by_site.items():
            yield tenant, site, batch
        t += step


async def produce(bootstrap: str, topic: str, messages: list[tuple[str, str, Any]]) -> int:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=1 << 20
    )
    await producer.start()
    n = 0
    try:
        futures = []
        for _, site, batch in messages:
            futures.append(await producer.send(topic, orjson.dumps(batch), key=site.encode()))
            n += len(batch)
        for f in futures:
            await f
    finally:
        await producer.stop()
    return n


def processor_env(db: str, bootstrap: str, topic: str, cfg: Path) -> dict[str, str]:
    return riskmon_env(
        database_url=db, kafka_bootstrap_servers=bootstrap, kafka_topic=topic,
        kafka_group_id=f"city-{uuid.uuid4().hex[:6]}", mqtt_url="", config=str(cfg),
        http_port=str(devservices.free_port()), rule_packs=PACKS,
    )  # fmt: skip


async def kafka_rate(
    pg: str, bootstrap: str, cfg: Path, messages: list[Any], profile: Path | None = None
) -> float:
    """Readings/s of a processor; ``profile``: py-spy samples it meanwhile (summary there)."""
    topic = f"riskmon.readings.city.{uuid.uuid4().hex[:6]}"
    await devservices.create_topics(bootstrap, {topic: 4})
    total = await produce(bootstrap, topic, messages)
    async with temporary_database(pg, "riskmon_bench") as db:
        environ = processor_env(db, bootstrap, topic, cfg)
        await migrate(environ)
        proc = await serve(environ, "processor")
        spy = None
        try:
            while (first := await count(db)) == 0:
                await asyncio.sleep(0.005)
            started = time.monotonic()
            if profile is not None:  # from the first reading stored: start-up left out
                spy = await asyncio.create_subprocess_exec(
                    str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(proc.pid), "--format", "raw", "--output",
                    str(profile.with_suffix(".raw")), "--rate", "250", "--nonblocking",
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
            while (n := await count(db)) < total:
                await asyncio.sleep(0.05)
            if first >= total:
                raise RuntimeError("stored before the first look: too few readings to time")
            return (n - first) / (time.monotonic() - started)
        finally:
            if spy is not None and profile is not None:
                spy.send_signal(2)
                await asyncio.wait_for(spy.wait(), 60)
                from tests.bench.profile_mqtt import summarize

                profile.write_text(summarize(profile.with_suffix(".raw"), top=25))
            await stop(proc)
            await devservices.delete_topics(bootstrap, [topic])


async def publish(mport: int, messages: list[Any], window: int = 50) -> None:
    async with aiomqtt.Client("127.0.0.1", mport, identifier=f"city-{uuid.uuid4().hex[:6]}") as c:
        for i in range(0, len(messages), window):
            await asyncio.gather(
                *(c.publish(f"riskmon/v1/{tenant}/{site}/readings", orjson.dumps(batch), qos=1)
                  for tenant, site, batch in messages[i : i + window])
            )  # fmt: skip


async def mqtt_service(pg: str, cfg: Path, mport: int, db: str) -> tuple[Any, int]:
    port = devservices.free_port()
    environ = riskmon_env(
        database_url=db, mqtt_url=f"mqtt://127.0.0.1:{mport}",
        mqtt_client_id=f"city-{uuid.uuid4().hex[:6]}", mqtt_share_group=f"c{uuid.uuid4().hex[:6]}",
        config=str(cfg), http_port=str(port), rule_packs=PACKS, admin_token=TOKEN,
        startup_grace_s="0",
    )  # fmt: skip
    await migrate(environ)
    proc = await serve(environ, "all")
    await wait_ready(port, timeout=600)
    return proc, port


async def mqtt_rate(pg: str, cfg: Path, mport: int, messages: list[Any]) -> float:
    total = sum(len(b) for _, _, b in messages)
    async with temporary_database(pg, "riskmon_bench") as db:
        proc, _ = await mqtt_service(pg, cfg, mport, db)
        try:
            started = time.monotonic()
            await publish(mport, messages)
            while await count(db) < total:
                await asyncio.sleep(0.1)
            return total / (time.monotonic() - started)
        finally:
            await stop(proc)


async def latency(
    pg: str,
    cfg: Path,
    mport: int,
    messages: list[Any],
    rate: float,
    seconds: float,
    warmup: float = WARMUP_S,
) -> list[float]:
    """Samples (s) from publication to the alert on the live stream, at ``rate`` readings/s
    of the city stream (times made current); after ``warmup`` seconds of the stream, every
    0.1 s a probe gas detector crosses orange with two readings (the rule confirms) or returns
    to normal; a probe opens once (the rule's off-delay keeps it open), so up to 200 samples.
    The warm-up leaves out a fresh service's first fraction of a second, when its first
    batches and first alert writes take a few hundred milliseconds (docs/benchmarks.md)."""
    probes = sorted({(t, s, r["sensor"]) for t, s, b in messages for r in b
                     if "-g" in r["sensor"]})[:200]  # fmt: skip
    sent: dict[str, float] = {}
    samples: list[float] = []
    async with temporary_database(pg, "riskmon_bench") as db:
        proc, port = await mqtt_service(pg, cfg, mport, db)

        async def listen() -> None:
            url = f"http://127.0.0.1:{port}/api/v1/stream"
            async with (
                httpx.AsyncClient(timeout=None) as client,
                client.stream("GET", url, params={"token": TOKEN, "level": 2}) as answer,
            ):
                async for line in answer.aiter_lines():
                    if line.startswith("data: "):
                        event = orjson.loads(line[6:])
                        sensor = event["alert"]["sensor"]
                        if event["kind"] in ("opened", "escalated") and sensor in sent:
                            samples.append(time.time() - sent.pop(sensor))

        listener = asyncio.create_task(listen())
        try:
            await asyncio.sleep(1.0)
            async with aiomqtt.Client("127.0.0.1", mport, identifier="city-latency") as c:
                began, published, k = time.monotonic(), 0, 0
                next_probe = began + warmup
                high: set[str] = set()
                while time.monotonic() - began < warmup + seconds:
                    tenant, site, batch = messages[k % len(messages)]
                    now = time.time()
                    batch = [{**r, "ts": now} for r in batch]
                    if time.monotonic() >= next_probe:
                        pt, ps, probe = probes[(k // 7) % len(probes)]
                        value = 0.5 if probe in high else 60.0
                        (high.discard if probe in high else high.add)(probe)
                        if value > 1:
                            sent[probe] = now
                        # two readings in a row: the rule opens on the second (confirm: 2)
                        two = [{"sensor": probe, "ts": now - d, "value": value} for d in (1e-3, 0)]
                        await c.publish(f"riskmon/v1/{pt}/{ps}/readings", orjson.dumps(two), qos=1)
                        next_probe += 0.1
                    await c.publish(
                        f"riskmon/v1/{tenant}/{site}/readings", orjson.dumps(batch), qos=1
                    )
                    published += len(batch)
                    k += 1
                    await asyncio.sleep(max(0.0, began + published / rate - time.monotonic()))
            await asyncio.sleep(3)
        finally:
            listener.cancel()
            await stop(proc)
    return samples


async def steady(pg: str, bootstrap: str, tmp: Path, args: argparse.Namespace) -> str:
    devices = city(args.sensors, seed=2)
    cfg = tmp / "steady.yaml"
    sensors = write_config(cfg, devices)
    start = time.time() - args.hours * 3600 - 3600
    print(f"steady: generating {args.hours} h of {sensors} sensors", flush=True)
    messages = list(readings(devices, start, args.hours * 3600, None))
    topic = f"riskmon.readings.steady.{uuid.uuid4().hex[:6]}"
    await devservices.create_topics(bootstrap, {topic: 4})
    total = await produce(bootstrap, topic, messages)
    print(f"steady: {total:,} readings in Kafka", flush=True)
    async with temporary_database(pg, "riskmon_bench") as db:
        environ = processor_env(db, bootstrap, topic, cfg)
        await migrate(environ)
        proc = await serve(environ, "processor")
        try:
            await wait_ready(int(environ["RISKMON_HTTP_PORT"]), timeout=600)
            rss_start = rss_kib(proc.pid)
            port = int(environ["RISKMON_HTTP_PORT"])
            timeline = [(time.monotonic(), 0.0)]  # (wall, readings accepted)
            while timeline[-1][1] < total:
                await asyncio.sleep(0.1)
                timeline.append((time.monotonic(), await accepted(port)))
            while await count(db) < total:
                await asyncio.sleep(0.5)
            rss_end = rss_kib(proc.pid)
        finally:
            await stop(proc)  # a clean stop snapshots every partition's state
            await devservices.delete_topics(bootstrap, [topic])
        state = int(await scalar(db, "SELECT COALESCE(sum(length(state)), 0) FROM state_snapshots"))
        by_rule = await state_by_rule(db)
    # readings come in event-time order: the n-th reading taken in marks the event time reached
    hour_ends: list[int] = []
    n = 0
    for _, _, batch in messages:
        n += len(batch)
        if batch[0]["ts"] >= start + (len(hour_ends) + 1) * 3600:
            hour_ends.append(n - len(batch))
    first = rate_between(timeline, 1, hour_ends[0])  # from the first reading taken in
    last = rate_between(timeline, hour_ends[args.hours - 2], total)
    return "\n".join([
        f"Steady state: {sensors:,} sensors of the city mix at their field intervals, "
        f"{args.hours} h of event time ({total:,} readings) through Kafka, every pack on. Rates "
        "per hour of event time from when its first and last readings were taken in.",
        "",
        "| figure | value | target |",
        "|---|---|---|",
        f"| readings/s over the first hour of event time | {first:,.0f} | |",
        f"| readings/s over the last hour of event time | {last:,.0f} | |",
        f"| last / first | {last / first:.2f} | ≥ 0.90 |",
        f"| snapshot bytes per sensor at the end | {state / sensors:,.0f} B | |",
        f"| of which, by rule (top 5; a rule holds rows for the sensors it applies to) | {by_rule} | |",
        f"| resident memory at the end | {rss_end / 1024:,.0f} MiB | |",
        f"| resident memory per sensor at the end (all of it / sensors) | {rss_end * 1024 / sensors:,.0f} B | ≤ 16 KB |",
        f"| growth while the windows filled, per sensor | {(rss_end - rss_start) * 1024 / sensors:,.0f} B | |",
    ])  # fmt: skip


async def scalar(db: str, sql: str) -> Any:
    from sqlalchemy import text

    from monitor.store.db import open_engine

    async with open_engine(db) as engine, engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar_one()


async def accepted(port: int) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("riskmon_ingest_readings_accepted_total")
    )


def rate_between(timeline: list[tuple[float, float]], lo: int, hi: int) -> float:
    """Readings/s while the n-th reading taken in went from ``lo`` to ``hi``."""
    t_lo = next(w for w, n in timeline if n >= lo)
    t_hi = next(w for w, n in timeline if n >= hi)
    return (hi - lo) / (t_hi - t_lo) if t_hi > t_lo else float("nan")


async def state_by_rule(db: str) -> str:
    """Bytes per sensor of each rule's arrays in the snapshots (the five largest)."""
    raw = await scalar(db, "SELECT string_agg(encode(state, 'base64'), ',') FROM state_snapshots")
    sizes: dict[str, int] = {}
    sensors = 0
    for part in (raw or "").split(","):
        arrays = decode_state(base64.b64decode(part))
        sensors += int(arrays["keys"].shape[0])
        for name, values in arrays.items():
            rule = name.split("|", 1)[0] if "|" in name else name
            sizes[rule] = sizes.get(rule, 0) + int(values.nbytes)
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
    return ", ".join(f"{rule} {size / max(sensors, 1):,.0f} B" for rule, size in top)


async def mix(pg: str, bootstrap: str, mport: int, tmp: Path, args: argparse.Namespace) -> str:
    devices = city(args.sensors)
    cfg = tmp / "city.yaml"
    sensors = write_config(cfg, devices)
    messages = list(readings(devices, time.time() - 86400, args.steps * 60.0, 60.0))
    total = sum(len(b) for _, _, b in messages)
    print(f"mix: {sensors:,} sensors, {total:,} readings in {len(messages):,} messages", flush=True)
    results: dict[str, list[float]] = {"kafka": [], "mqtt": []}
    if args.profile:
        rate = await kafka_rate(pg, bootstrap, cfg, messages, args.profile)
        return f"Kafka {rate:,.0f} readings/s under py-spy\n\n{args.profile.read_text()}"
    for i in range(args.repeat):
        results["kafka"].append(await kafka_rate(pg, bootstrap, cfg, messages))
        results["mqtt"].append(await mqtt_rate(pg, cfg, mport, messages))
        print(
            f"  run {i + 1}: Kafka {results['kafka'][-1]:,.0f}/s, MQTT {results['mqtt'][-1]:,.0f}/s",
            flush=True,
        )
    kafka, mqtt = statistics.median(results["kafka"]), statistics.median(results["mqtt"])
    samples = sorted(await latency(pg, cfg, mport, messages, mqtt / 2, args.latency_seconds))
    p50 = samples[len(samples) // 2] * 1000 if samples else float("nan")
    p99 = samples[int(len(samples) * 0.99)] * 1000 if samples else float("nan")
    per = total // max(1, len(messages))
    return "\n".join([
        f"City mix: {sensors:,} sensors on {len({d.site for d in devices})} sites, every pack on, "
        f"{total:,} readings ({args.steps} per sensor, one a minute of event time), about {per} "
        f"readings per message (one site's step); medians of {args.repeat} runs.",
        "",
        "| figure | median | runs | target |",
        "|---|---|---|---|",
        f"| readings/s stored, Kafka (processor) | {kafka:,.0f} | {', '.join(f'{v:,.0f}' for v in results['kafka'])} | ≥ 100,000 |",
        f"| readings/s stored, MQTT batched (single node) | {mqtt:,.0f} | {', '.join(f'{v:,.0f}' for v in results['mqtt'])} | |",
        f"| event-to-alert p50 at {mqtt / 2:,.0f} readings/s (MQTT, after {WARMUP_S:.0f} s of stream) | {p50:,.0f} ms | {len(samples)} samples | |",
        f"| event-to-alert p99 at {mqtt / 2:,.0f} readings/s (MQTT, after {WARMUP_S:.0f} s of stream) | {p99:,.0f} ms | | ≤ 100 ms |",
    ])  # fmt: skip


async def main(args: argparse.Namespace) -> str:
    with (
        tempfile.TemporaryDirectory() as tmp,
        devservices.postgres(Path(tmp)) as pg,
        devservices.spawn_mosquitto() as mport,
        devservices.tansu() as bootstrap,
    ):
        header = (
            f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, {platform.platform()}\n"
            f"Command: `python -m tests.bench.city {' '.join(sys.argv[1:])}`\n"
        )
        if args.mode == "steady":
            return header + "\n" + await steady(pg, bootstrap, Path(tmp), args)
        return header + "\n" + await mix(pg, bootstrap, mport, Path(tmp), args)


if __name__ == "__main__":
    import logging

    logging.getLogger("mqtt").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["mix", "steady"], default="mix")
    parser.add_argument("--sensors", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=30, help="mix: readings per sensor")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--hours", type=int, default=36, help="steady: event time replayed")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--profile", type=Path, help="mix: one Kafka run under py-spy")
    arguments = parser.parse_args()
    if arguments.mode == "steady" and arguments.sensors == 10_000:
        arguments.sensors = 1_000
    table = asyncio.run(main(arguments))
    print(table)
    if arguments.out:
        arguments.out.write_text(table + "\n")
