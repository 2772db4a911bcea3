"""Where the time of the MQTT path goes: py-spy samples a riskmon process (a single node, or
a gateway forwarding to Kafka) while it takes single-reading QoS 1 messages, and prints the
share of samples by the package each sample is in (inclusive) and the top functions (self).

    python -m tests.bench.profile_mqtt --role all --messages 30000
    python -m tests.bench.profile_mqtt --role gateway --messages 30000
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import tempfile
import time
import uuid
from pathlib import Path

from monitor import devservices
from monitor.testing import temporary_database
from tests.bench.e2e import (
    config,
    forwarded,
    migrate,
    mosquitto_pub,
    riskmon_env,
    serve,
    single_readings,
    stop,
    wait_count,
    wait_ready,
)

AREAS = [  # first match wins, from the innermost frame outwards
    ("paho-mqtt (socket, packets, acks)", "paho/"),
    ("aiomqtt", "aiomqtt/"),
    ("aiokafka (produce)", "aiokafka/"),
    ("PostgreSQL driver and SQLAlchemy", ("psycopg", "sqlalchemy")),
    ("decode and normalize", ("ingest/decode", "ingest/normalize", "orjson")),
    ("rules", "rules/"),
    ("alerts", "alerts/"),
    ("pipeline and store", ("monitor/pipeline", "monitor/checkpoint", "monitor/store")),
    ("MQTT source", "ingest/mqtt"),
    ("asyncio event loop", "asyncio/"),
]


def area(stack: str) -> str:
    for frame in reversed(stack.split(";")):
        for name, needle in AREAS:
            needles = (needle,) if isinstance(needle, str) else needle
            if any(n in frame for n in needles):
                return name
    return "other"


def summarize(raw: Path, top: int = 12) -> str:
    by_area: collections.Counter[str] = collections.Counter()
    by_leaf: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        by_area[area(stack)] += n
        by_leaf[stack.split(";")[-1]] += n
    lines = [f"{total} samples", "", "| where | share |", "|---|---|"]
    lines += [f"| {k} | {v / total:.0%} |" for k, v in by_area.most_common()]
    lines += ["", "| function (self) | share |", "|---|---|"]
    lines += [f"| `{k[:90]}` | {v / total:.1%} |" for k, v in by_leaf.most_common(top)]
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> str:
    with (
        tempfile.TemporaryDirectory() as tmp,
        devservices.postgres(Path(tmp)) as pg,
        devservices.spawn_mosquitto() as port,
        devservices.tansu() as bootstrap,
    ):
        cfg = Path(tmp) / "bench.yaml"
        sensors = config(cfg, 10, 100)
        topic = f"riskmon.readings.profile.{uuid.uuid4().hex[:6]}"
        await devservices.create_topics(bootstrap, {topic: 4})
        async with temporary_database(pg, "riskmon_bench") as db:
            environ = riskmon_env(
                database_url=db,
                mqtt_url=f"mqtt://127.0.0.1:{port}",
                mqtt_client_id=f"profile-{uuid.uuid4().hex[:6]}",
                mqtt_share_group=f"profile-{uuid.uuid4().hex[:6]}",
                kafka_bootstrap_servers=bootstrap,
                kafka_topic=topic,
                config=str(cfg),
                http_port=str(devservices.free_port()),
            )
            await migrate(environ)
            proc = await serve(environ, args.role)
            try:
                await wait_ready(int(environ["RISKMON_HTTP_PORT"]))
                site, lines = single_readings(sensors, args.messages)
                raw = Path(tmp) / "profile.txt"
                spy = await asyncio.create_subprocess_exec(
                    "py-spy", "record", "--pid", str(proc.pid), "--format", "raw",
                    "--output", str(raw), "--rate", "200", "--nonblocking",
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
                await asyncio.sleep(1)
                started = time.monotonic()
                await mosquitto_pub(port, f"riskmon/v1/city/{site}/readings", lines)
                if args.role == "gateway":
                    while await forwarded([int(environ["RISKMON_HTTP_PORT"])]) < args.messages:
                        await asyncio.sleep(0.05)
                else:
                    await wait_count(db, args.messages)
                rate = args.messages / (time.monotonic() - started)
                spy.send_signal(2)  # SIGINT: py-spy writes what it sampled
                await asyncio.wait_for(spy.wait(), 30)
            finally:
                await stop(proc)
        await devservices.delete_topics(bootstrap, [topic])
        return f"role {args.role}: {rate:,.0f} msg/s\n\n{summarize(raw)}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", choices=["all", "gateway"], default="all")
    parser.add_argument("--messages", type=int, default=30_000)
    print(asyncio.run(main(parser.parse_args())))
