"""Event-to-alert latency at a sustained input rate, and resident memory per sensor
(``make bench``).  riskmon runs as its own process (``riskmon serve``) with the default domain
packs (rules and anomaly detectors) on every reading.

Latency: MQTT messages of ``--per-message`` readings at ``--rate`` readings/s for
``--seconds``, to combustible-gas detectors; every tenth of a second a probe detector crosses
the orange set-point with two readings (the rule confirms on the second) and then falls back,
and the time from its publication to the alert arriving on the live stream
(``GET /api/v1/stream``, after it is stored) is one sample.  Memory: the service's resident set
with ``--small`` and with ``--sensors`` sensors, each sent one reading; the difference per
sensor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt
import httpx
import numpy as np
import orjson

from monitor import devservices
from monitor.testing import temporary_database
from tests.bench.e2e import config, migrate, riskmon_env, serve, stop, wait_ready

TOKEN = "bench-admin"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def _service(pg: str, cfg: Path, **extra: str):  # type: ignore[no-untyped-def]
    db_cm = temporary_database(pg, "riskmon_bench")
    db = await db_cm.__aenter__()
    port = devservices.free_port()
    environ = riskmon_env(
        database_url=db, config=str(cfg), http_port=str(port), admin_token=TOKEN,
        startup_grace_s="0", **extra,
    )  # fmt: skip
    await migrate(environ)
    proc = await serve(environ, "all")
    await wait_ready(port, timeout=600)
    return proc, port, db_cm


async def memory(pg: str, tmp: Path, n: int) -> int:
    cfg = tmp / f"mem{n}.yaml"
    sensors = config(cfg, max(1, n // 100), min(n, 100))
    proc, port, db_cm = await _service(pg, cfg, mqtt_url="")
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=300,
        ) as api:  # fmt: skip
            now = time.time()
            for i in range(0, len(sensors), 5000):
                body = [{"sensor": s, "ts": now, "value": 0.5} for _, s in sensors[i : i + 5000]]
                assert (await api.post("/api/v1/readings", json=body)).status_code == 200
        await asyncio.sleep(2)
        return rss_kib(proc.pid)
    finally:
        await stop(proc)
        await db_cm.__aexit__(None, None, None)


async def latency(pg: str, tmp: Path, args: argparse.Namespace) -> tuple[list[float], float]:
    cfg = tmp / "latency.yaml"
    # combustible-gas detectors: a step to 60 %LEL is red at once (two readings: the rule
    # confirms); a methane well's leak rule first tells a leak from biogas over its window
    sensors = config(cfg, 100, args.rate // 100, "gas_combustible", "major_hazard_source")
    with devservices.spawn_mosquitto() as mport:
        proc, port, db_cm = await _service(
            pg,
            cfg,
            mqtt_url=f"mqtt://127.0.0.1:{mport}",
            mqtt_client_id="bench-latency",
            mqtt_share_group=f"bench-{time.time_ns()}",
        )
        try:
            return await _measure(port, mport, sensors, args)
        finally:
            await stop(proc)
            await db_cm.__aexit__(None, None, None)


async def _measure(
    port: int, mport: int, sensors: list[tuple[str, str]], args: argparse.Namespace
) -> tuple[list[float], float]:
    """Latency samples (s) and the input rate achieved (readings/s)."""
    sent: dict[str, float] = {}
    samples: list[float] = []
    by_site: dict[str, list[str]] = {}
    for site, s in sensors:
        by_site.setdefault(site, []).append(s)
    sites = sorted(by_site)
    probes = [(site, by_site[site][0]) for site in sites]  # first detector of each site

    async def listen() -> None:
        url = f"http://127.0.0.1:{port}/api/v1/stream"
        async with (
            httpx.AsyncClient(timeout=None) as client,
            client.stream("GET", url, params={"token": TOKEN}) as answer,
        ):
            async for line in answer.aiter_lines():
                if line.startswith("data: "):
                    event = orjson.loads(line[6:])
                    sensor = event["alert"]["sensor"]
                    if event["kind"] == "opened" and sensor in sent:
                        samples.append(time.time() - sent.pop(sensor))

    listener = asyncio.create_task(listen())
    await asyncio.sleep(1.0)
    rng = np.random.default_rng(1)
    per_msg = args.per_message
    interval = per_msg / args.rate
    published = 0
    async with aiomqtt.Client("127.0.0.1", mport, identifier="bench-publisher") as client:
        began = time.monotonic()
        k = probed = 0
        next_probe = began
        high: set[str] = set()
        while time.monotonic() - began < args.seconds:
            site = sites[k % len(sites)]
            ids = by_site[site]
            now = time.time()
            batch = [
                {"sensor": ids[(k // len(sites) + j) % len(ids)], "ts": now,
                 "value": round(0.5 + 0.05 * float(rng.random()), 3)}
                for j in range(min(per_msg, len(ids)))
            ]  # fmt: skip
            if time.monotonic() >= next_probe:  # the probes in turn, each in its own message
                probe_site, probe = probes[probed % len(probes)]
                probed += 1
                value = 0.5 if probe in high else 60.0  # orange, then back to normal
                (high.discard if probe in high else high.add)(probe)
                if value > 1:
                    sent[probe] = now
                # two readings in a row: the pack's rule opens on the second (confirm: 2)
                two = [{"sensor": probe, "ts": now - d, "value": value} for d in (1e-3, 0)]
                topic = f"riskmon/v1/city/{probe_site}/readings"
                await client.publish(topic, orjson.dumps(two), qos=1)
                published += 2
                next_probe += 0.1
            batch = [r for r in batch if r["sensor"] not in high]  # a probe stays up meanwhile
            await client.publish(f"riskmon/v1/city/{site}/readings", orjson.dumps(batch), qos=1)
            published += len(batch)
            k += 1
            await asyncio.sleep(max(0.0, began + k * interval - time.monotonic()))
        rate = published / (time.monotonic() - began)
    await asyncio.sleep(3)
    listener.cancel()
    return samples, rate


async def main(args: argparse.Namespace) -> str:
    p50s, p99s, counts, rates, per_sensor = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp, devservices.postgres(Path(tmp)) as pg:
        for i in range(args.repeat):
            samples, rate = await latency(pg, Path(tmp), args)
            rates.append(rate)
            q = np.quantile(samples, [0.5, 0.99]) * 1000
            p50s.append(float(q[0]))
            p99s.append(float(q[1]))
            counts.append(len(samples))
            print(
                f"run {i + 1}: {rate:,.0f} readings/s in, {len(samples)} alerts, "
                f"p50 {q[0]:.1f} ms, p99 {q[1]:.1f} ms"
            )
        small = big = 0
        for _ in range(0 if args.no_memory else args.memory_runs):
            small = await memory(pg, Path(tmp), args.small)
            big = await memory(pg, Path(tmp), args.sensors)
            print(
                f"RSS {small / 1024:.0f} MiB with {args.small}, {big / 1024:.0f} MiB with "
                f"{args.sensors} sensors"
            )
            per_sensor.append((big - small) * 1024 / (args.sensors - args.small))
        per_sensor = per_sensor or [0.0]
    return "\n".join(
        [
            "# Latency and memory (make bench)",
            "",
            f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}. Command: `python -m tests.bench.latency_memory "
            f"{' '.join(sys.argv[1:])}`. riskmon `serve --role all` with the default packs.",
            "",
            "| figure | median | runs | target |",
            "|---|---|---|---|",
            f"| event-to-alert p50 at {args.rate:,} readings/s over MQTT "
            f"({args.per_message} per message) | {statistics.median(p50s):.1f} ms | "
            f"{', '.join(f'{v:.1f}' for v in p50s)} | |",
            f"| event-to-alert p99, same run | {statistics.median(p99s):.1f} ms | "
            f"{', '.join(f'{v:.1f}' for v in p99s)} | ≤ 250 ms |",
            f"| alerts sampled per run | {statistics.median(counts):.0f} | | |",
            f"| input rate achieved (readings/s) | {statistics.median(rates):,.0f} | "
            f"{', '.join(f'{v:,.0f}' for v in rates)} | {args.rate:,} |",
            f"| resident memory per sensor ({args.sensors:,} vs {args.small:,} sensors) | "
            f"{statistics.median(per_sensor):,.0f} bytes | "
            f"{', '.join(f'{v:,.0f}' for v in per_sensor)} (last RSS {small / 1024:.0f} → "
            f"{big / 1024:.0f} MiB) | "
            "≤ 2,048 bytes |",
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--per-message", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sensors", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--no-memory", action="store_true", help="latency only")
    parser.add_argument("--memory-runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    arguments = parser.parse_args()
    text = asyncio.run(main(arguments))
    print(text)
    if arguments.out:
        arguments.out.write_text(text + "\n")
