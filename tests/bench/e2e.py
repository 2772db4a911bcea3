"""End-to-end benchmark (``make bench``): riskmon against the real services, next to the raw
limits of the same services measured in the same run.

Prints a Markdown table; ``--out FILE`` also writes it.  Each figure is the median of
``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import orjson
import psycopg
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from monitor import devservices
from monitor.model import ReadingBatch
from monitor.store.readings import encode_copy
from monitor.testing import temporary_database

ROOT = Path(__file__).resolve().parents[2]


def config(
    path: Path, sites: int, per_site: int, kind: str = "methane_well",
    site_kind: str = "gas_network_zone",
) -> list[tuple[str, str]]:  # fmt: skip
    site_rows = [
        {"id": f"z{i:04d}", "name": f"z{i}", "tenant": "city", "kind": site_kind}
        for i in range(sites)
    ]
    sensors = [(f"z{i:04d}", f"z{i:04d}-w{j:02d}") for i in range(sites) for j in range(per_site)]
    path.write_text(
        yaml.safe_dump(
            {
                "sites": site_rows,
                "sensors": [
                    {
                        "id": s,
                        "site": site,
                        "kind": kind,
                        "unit": "%LEL",
                        "expected_interval_s": 1e6,
                    }
                    for site, s in sensors
                ],
            }
        )
    )
    return sensors


def kafka_records(
    sensors: list[tuple[str, str]], total: int, per_msg: int, t0: float
) -> list[tuple[bytes, bytes]]:
    by_site: dict[str, list[str]] = {}
    for site, s in sensors:
        by_site.setdefault(site, []).append(s)
    out, n, k = [], 0, 0
    while n < total:
        for site, ids in by_site.items():
            batch = [
                {
                    "sensor": ids[(k + j) % len(ids)],
                    "ts": t0 + k + j * 1e-3,
                    "value": 1.0 + (j % 7) * 0.1,
                }
                for j in range(per_msg)
            ]
            out.append((site.encode(), orjson.dumps(batch)))
            n += per_msg
            if n >= total:
                break
        k += 1
    return out


def riskmon_env(**kv: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RISKMON_")}
    return {
        **base,
        "RISKMON_LOG_LEVEL": "WARNING",
        **{f"RISKMON_{k.upper()}": v for k, v in kv.items()},
    }


async def count(db: str) -> int:
    async with await psycopg.AsyncConnection.connect(db) as conn:
        row = await (await conn.execute("SELECT count(*) FROM readings")).fetchone()
        return int(row[0]) if row else 0


async def wait_count(db: str, n: int, timeout: float = 300) -> float:
    deadline = time.monotonic() + timeout
    while (c := await count(db)) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {c} of {n} readings stored")
        await asyncio.sleep(0.05)
    return time.monotonic()


async def migrate(environ: dict[str, str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor.cli",
        "migrate",
        env=environ,
        stdout=asyncio.subprocess.DEVNULL,
    )
    assert await proc.wait() == 0


async def serve(environ: dict[str, str], role: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor.cli", "serve", "--role", role, env=environ, cwd=ROOT
    )


async def stop(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 30)
    except TimeoutError:
        proc.kill()


# --- raw limits ---------------------------------------------------------------------------


async def raw_copy(db: str, n: int) -> float:
    """Binary COPY of n readings into a table shaped like ``readings`` (readings/s)."""
    batch = ReadingBatch(
        np.arange(n, dtype=np.int32) % 10_000,
        1.7e9 + np.arange(n, dtype=np.float64),
        np.ones(n),
        np.zeros(n, np.int16),
        np.full(n, 1.7e9),
    )
    payload = encode_copy(batch)
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_copy (sensor_key int4, ts timestamptz,"
            " value float8, quality int2, received_at timestamptz,"
            " PRIMARY KEY (sensor_key, ts))"
        )
        await conn.execute("TRUNCATE bench_copy")
        started = time.perf_counter()
        async with (
            conn.cursor() as cur,
            cur.copy("COPY bench_copy FROM STDIN (FORMAT BINARY)") as copy,
        ):
            await copy.write(payload)
        return n / (time.perf_counter() - started)


async def raw_kafka(bootstrap: str, topic: str, readings: int) -> float:
    """Consume the pre-produced topic with a plain consumer (readings/s)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        got, started = 0, None
        while got < readings:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batch.values():
                if started is None:
                    started = time.perf_counter()
                for r in records:
                    got += r.value.count(b'"sensor"')
        assert started is not None
        return got / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def mosquitto_pub(port: int, topic: str, lines: list[bytes]) -> None:
    """Publish one QoS 1 message per line with the C client (a Python publisher would be the
    bottleneck on this machine)."""
    proc = await asyncio.create_subprocess_exec(
        "mosquitto_pub",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-q",
        "1",
        "-t",
        topic,
        "-l",
        stdin=asyncio.subprocess.PIPE,
    )
    await proc.communicate(b"\n".join(lines) + b"\n")
    assert proc.returncode == 0


async def raw_mqtt(port: int, n: int) -> float:
    """Single-reading QoS 1 messages, mosquitto_pub to mosquitto_sub (msg/s)."""
    topic = f"bench/{uuid.uuid4().hex}"
    sub = await asyncio.create_subprocess_exec(
        "mosquitto_sub",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-q",
        "1",
        "-t",
        topic,
        "-C",
        str(n),
        stdout=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(0.5)
    started = time.perf_counter()
    await mosquitto_pub(port, topic, [b'{"sensor":"x","ts":%d,"value":1}' % i for i in range(n)])
    await asyncio.wait_for(sub.wait(), 120)
    return n / (time.perf_counter() - started)


async def wait_ready(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("riskmon did not become ready")
            await asyncio.sleep(0.1)


# --- riskmon -----------------------------------------------------------------------------


async def riskmon_kafka(pg: str, bootstrap: str, topic: str, cfg: Path, readings: int) -> float:
    async with temporary_database(pg, "riskmon_bench") as db:
        environ = riskmon_env(
            database_url=db,
            kafka_bootstrap_servers=bootstrap,
            kafka_topic=topic,
            kafka_group_id=f"bench-{uuid.uuid4().hex}",
            mqtt_url="",
            config=str(cfg),
            http_port=str(devservices.free_port()),
        )
        await migrate(environ)
        proc = await serve(environ, "processor")
        try:
            while await count(db) == 0:
                await asyncio.sleep(0.01)
            started = time.monotonic()
            first = await count(db)
            finished = await wait_count(db, readings)
            return (readings - first) / (finished - started)
        finally:
            await stop(proc)


def single_readings(sensors: list[tuple[str, str]], n: int) -> tuple[str, list[bytes]]:
    """``n`` one-reading payloads over the first site's sensors, an hour ago, 1 ms apart."""
    site, ids = sensors[0][0], [sid for st, sid in sensors if st == sensors[0][0]]
    t0 = time.time() - 3600
    lines = [
        b'{"sensor":"%s","ts":%.3f,"value":1.5}' % (ids[i % len(ids)].encode(), t0 + i * 1e-3)
        for i in range(n)
    ]
    return site, lines


async def riskmon_mqtt(
    pg: str, port: int, cfg: Path, sensors: list[tuple[str, str]], n: int
) -> float:
    async with temporary_database(pg, "riskmon_bench") as db:
        environ = riskmon_env(
            database_url=db,
            mqtt_url=f"mqtt://127.0.0.1:{port}",
            mqtt_client_id=f"bench-{uuid.uuid4().hex}",
            mqtt_share_group=f"bench-{uuid.uuid4().hex[:8]}",
            config=str(cfg),
            http_port=str(devservices.free_port()),
        )
        await migrate(environ)
        proc = await serve(environ, "all")
        try:
            await wait_ready(int(environ["RISKMON_HTTP_PORT"]))
            site, lines = single_readings(sensors, n)
            started = time.monotonic()
            await mosquitto_pub(port, f"riskmon/v1/city/{site}/readings", lines)
            finished = await wait_count(db, n)
            return n / (finished - started)
        finally:
            await stop(proc)


async def forwarded(ports: list[int]) -> float:
    """Messages the gateways forwarded and Kafka acknowledged, from their /metrics."""
    total = 0.0
    async with httpx.AsyncClient() as client:
        for port in ports:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            for line in text.splitlines():
                if line.startswith("riskmon_gateway_forwarded_records_total"):
                    total += float(line.split()[-1])
    return total


async def riskmon_mqtt_gateways(
    pg: str,
    port: int,
    bootstrap: str,
    cfg: Path,
    sensors: list[tuple[str, str]],
    n: int,
    processes: int,
) -> float:
    """Single-reading QoS 1 messages through ``processes`` gateways in one MQTT v5 shared
    subscription into Kafka (msg/s, until Kafka acknowledged every message)."""
    topic = f"riskmon.readings.gw.{uuid.uuid4().hex[:6]}"
    await devservices.create_topics(bootstrap, {topic: 4})
    group = f"gw-{uuid.uuid4().hex[:8]}"
    async with temporary_database(pg, "riskmon_bench") as db:
        environs = [
            riskmon_env(
                database_url=db,
                mqtt_url=f"mqtt://127.0.0.1:{port}",
                mqtt_client_id=f"bench-gw{k}-{uuid.uuid4().hex[:6]}",
                mqtt_share_group=group,
                kafka_bootstrap_servers=bootstrap,
                kafka_topic=topic,
                config=str(cfg),
                http_port=str(devservices.free_port()),
            )
            for k in range(processes)
        ]
        await migrate(environs[0])
        procs = [await serve(e, "gateway") for e in environs]
        ports = [int(e["RISKMON_HTTP_PORT"]) for e in environs]
        try:
            for p in ports:
                await wait_ready(p)
            site, lines = single_readings(sensors, n)
            started = time.monotonic()
            await mosquitto_pub(port, f"riskmon/v1/city/{site}/readings", lines)
            while await forwarded(ports) < n:
                if time.monotonic() - started > 300:
                    raise TimeoutError("the gateways did not forward every message")
                await asyncio.sleep(0.05)
            return n / (time.monotonic() - started)
        finally:
            for proc in procs:
                await stop(proc)
            await devservices.delete_topics(bootstrap, [topic])


GATEWAYS = {
    k: f"riskmon MQTT gateways ×{k} to Kafka, one reading per message (msg/s)" for k in (1, 2)
}


async def main(args: argparse.Namespace) -> str:
    results: dict[str, list[float]] = {}

    def record(name: str, value: float) -> None:
        results.setdefault(name, []).append(value)
        print(f"  {name}: {value:,.0f}", flush=True)

    with (
        tempfile.TemporaryDirectory() as tmp,
        devservices.postgres(Path(tmp)) as pg,
        devservices.spawn_mosquitto() as mport,
        devservices.tansu() as bootstrap,
    ):
        cfg = Path(tmp) / "bench.yaml"
        sensors = config(cfg, args.sites, args.sensors_per_site)
        topic = f"riskmon.readings.bench.{uuid.uuid4().hex[:6]}"
        await devservices.create_topics(bootstrap, {topic: 4})
        records = kafka_records(sensors, args.kafka_readings, args.per_message, time.time() - 86400)
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=1 << 20
        )
        await producer.start()
        for f in [await producer.send(topic, v, key=k) for k, v in records]:
            await f
        await producer.stop()
        for i in range(args.repeat):
            print(f"run {i + 1}/{args.repeat}", flush=True)
            if args.only != "mqtt":
                async with temporary_database(pg, "riskmon_bench") as db:
                    record("raw COPY (readings/s)", await raw_copy(db, args.copy_rows))
                record(
                    "raw Kafka consume (readings/s)",
                    await raw_kafka(bootstrap, topic, args.kafka_readings),
                )
                record(
                    "riskmon via Kafka (readings/s)",
                    await riskmon_kafka(pg, bootstrap, topic, cfg, args.kafka_readings),
                )
            if args.only != "kafka":
                record("raw MQTT QoS1 (msg/s)", await raw_mqtt(mport, args.mqtt_messages))
                record(
                    "riskmon via MQTT, one reading per message (msg/s)",
                    await riskmon_mqtt(pg, mport, cfg, sensors, args.mqtt_messages),
                )
                for k, name in GATEWAYS.items():
                    rate = await riskmon_mqtt_gateways(
                        pg, mport, bootstrap, cfg, sensors, args.mqtt_messages, k
                    )
                    record(name, rate)
        await devservices.delete_topics(bootstrap, [topic])
    med = {k: statistics.median(v) for k, v in results.items()}
    if args.only:
        return "\n".join(f"{k}: {v:,.0f}" for k, v in med.items())
    rows = [
        ("riskmon via Kafka (readings/s)", "raw Kafka consume (readings/s)", 100_000),
        ("riskmon via MQTT, one reading per message (msg/s)", "raw MQTT QoS1 (msg/s)", 20_000),
    ]
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.platform()}",
        f"Command: `make bench` (`python -m tests.bench.e2e {' '.join(sys.argv[1:])}`)",
        f"Medians of {args.repeat} runs; {len(sensors):,} sensors on {args.sites} sites; Kafka "
        f"messages of {args.per_message} readings; every reading judged by the default rules.",
        "",
        "| figure | median | runs | limit (raw) | ratio to limit | target |",
        "|---|---|---|---|---|---|",
    ]
    for name, limit, target in rows:
        lines.append(
            f"| {name} | {med[name]:,.0f} | {', '.join(f'{v:,.0f}' for v in results[name])}"
            f" | {med[limit]:,.0f} | {med[name] / med[limit]:.2f} | ≥ {target:,} |"
        )
    lines.append(
        f"| raw COPY into PostgreSQL (readings/s) | {med['raw COPY (readings/s)']:,.0f} |"
        f" {', '.join(f'{v:,.0f}' for v in results['raw COPY (readings/s)'])} | | | |"
    )
    for name in GATEWAYS.values():
        lines.append(
            f"| {name} | {med[name]:,.0f} | {', '.join(f'{v:,.0f}' for v in results[name])}"
            f" | {med['raw MQTT QoS1 (msg/s)']:,.0f}"
            f" | {med[name] / med['raw MQTT QoS1 (msg/s)']:.2f} | |"
        )
    lines.append(f"| two gateways vs one | | | | {med[GATEWAYS[2]] / med[GATEWAYS[1]]:.2f} | |")
    lines.append(
        f"| riskmon via Kafka vs raw COPY | | | | "
        f"{med[rows[0][0]] / med['raw COPY (readings/s)']:.2f} | |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    import logging

    logging.getLogger("mqtt").setLevel(logging.ERROR)
    logging.getLogger("aiomqtt").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--sensors-per-site", type=int, default=100)
    parser.add_argument("--kafka-readings", type=int, default=500_000)
    parser.add_argument("--per-message", type=int, default=500)
    parser.add_argument("--copy-rows", type=int, default=500_000)
    parser.add_argument("--mqtt-messages", type=int, default=50_000)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--only", choices=["kafka", "mqtt"], default=None)
    arguments = parser.parse_args()
    table = asyncio.run(main(arguments))
    print(table)
    if arguments.out:
        arguments.out.write_text(table + "\n")
