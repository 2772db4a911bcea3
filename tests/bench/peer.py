"""riskmon against a generic stream pipeline on the same topic (issue 15's comparison).

The stream of the independent measurement: ``--sensors`` combustible-gas detectors on
``--sites`` sites, values around 3 %LEL with a rare 60 %LEL, ``--readings`` readings in
messages of 100 (one site's detectors over a few steps, keyed by site), on a Kafka topic of 4
partitions.  Both consume the whole topic, each in its own process, into its own PostgreSQL
database, in the same run, one after the other:

- riskmon: a processor (``riskmon serve --role processor``) with every shipped pack on;
- the peer: a plain Quix Streams application (``quixstreams``, the ``bench`` extra): each
  message exploded into readings, one threshold with hysteresis per sensor (on at 25 %LEL,
  off below 20), readings with their alert flag written by Quix's PostgreSQL sink.

Readings/s stored, from the first reading stored to the last, median of ``--repeat`` runs;
the figure is riskmon's over the peer's.  The peer runs as ``python -m tests.bench.peer
--consume ...`` in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from monitor import devservices
from monitor.testing import temporary_database
from tests.bench.city import kafka_rate, produce, scalar
from tests.bench.e2e import ROOT

ON, OFF = 25.0, 20.0  # the peer's threshold with hysteresis, %LEL
PER_MESSAGE = 100
INTERVAL_S = 30


def stream(sensors: int, sites: int, total: int, seed: int = 7) -> list[tuple[str, str, Any]]:
    """(tenant, site, readings) messages: every site's detectors step by step in event time,
    100 readings a message; about one reading in 2,000 is a 60 %LEL puff."""
    rng = random.Random(seed)
    per_site = [[f"pg{s:03d}-g{i:03d}" for i in range(s, sensors, sites)] for s in range(sites)]
    start = time.time() - total / sensors * INTERVAL_S - 3600
    messages: list[tuple[str, str, Any]] = []
    pending: dict[int, list[dict[str, Any]]] = {s: [] for s in range(sites)}
    made, step = 0, 0
    while made < total:
        ts = start + step * INTERVAL_S
        for s, ids in enumerate(per_site):
            for sensor in ids:
                if made == total:
                    break
                value = 60.0 if rng.random() < 5e-4 else max(0.0, rng.gauss(3.0, 0.6))
                pending[s].append({"sensor": sensor, "ts": ts, "value": round(value, 2)})
                made += 1
                if len(pending[s]) == PER_MESSAGE:
                    messages.append(("peer", f"pg{s:03d}", pending[s]))
                    pending[s] = []
        step += 1
    messages += [("peer", f"pg{s:03d}", rest) for s, rest in pending.items() if rest]
    return messages


def write_config(path: Path, sensors: int, sites: int) -> None:
    site_list = [{"id": f"pg{s:03d}", "name": f"peer {s}", "tenant": "peer",
                  "kind": "major_hazard_source"} for s in range(sites)]  # fmt: skip
    sensor_list = [{"id": f"pg{i % sites:03d}-g{i:03d}", "site": f"pg{i % sites:03d}",
                    "kind": "gas_combustible", "unit": "%LEL", "expected_interval_s": INTERVAL_S}
                   for i in range(sensors)]  # fmt: skip
    path.write_text(yaml.safe_dump({"sites": site_list, "sensors": sensor_list}))


def consume(bootstrap: str, topic: str, db: str, began: str) -> None:
    """The peer: a plain Quix Streams application (run in its own process).  It writes the
    time it judged its first reading to ``began``: its sink commits every 5 s (Quix's
    default checkpoint), so the first stored row says nothing about when work began."""
    from quixstreams import Application
    from quixstreams.sinks.community.postgresql import PostgreSQLSink

    url = urlparse(db.replace("+psycopg", ""))
    app = Application(
        broker_address=bootstrap, consumer_group=f"peer-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest", auto_create_topics=False, use_changelog_topics=False,
    )  # fmt: skip
    sink = PostgreSQLSink(
        host=url.hostname or "127.0.0.1", port=url.port or 5432, dbname=url.path.lstrip("/"),
        user=url.username or "postgres", password=url.password or "", table_name="readings",
        primary_key_columns=["sensor", "ts"], on_conflict_do_nothing=True,
        include_metadata=False,
    )  # fmt: skip
    active: dict[str, bool] = {}

    def judge(reading: dict[str, Any]) -> dict[str, Any]:
        if not active:
            Path(began).write_text(repr(time.time()))
        on = active.get(reading["sensor"], False)
        on = reading["value"] >= ON or (on and reading["value"] > OFF)
        active[reading["sensor"]] = on
        return {**reading, "alert": on}

    sdf = app.dataframe(app.topic(topic, value_deserializer="json"))
    sdf = sdf.apply(lambda readings: readings, expand=True).apply(judge)
    sdf.sink(sink)
    app.run()


async def peer_rate(pg: str, bootstrap: str, topic: str, total: int, tmp: Path) -> float:
    """Readings/s of the peer, from its first reading judged to its last one stored."""
    began = tmp / f"{topic}.began"
    async with temporary_database(pg, "riskmon_peer") as db:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.bench.peer", "--consume", bootstrap, topic, db,
            str(began), cwd=ROOT, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            while await _stored(db) < total:
                if proc.returncode is not None:
                    raise RuntimeError(f"the peer pipeline exited: {await _tail(proc)}")
                await asyncio.sleep(0.02)
            return total / (time.time() - float(began.read_text()))
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def _stored(db: str) -> int:
    sql = "SELECT coalesce((SELECT count(*) FROM readings), 0)"
    exists = await scalar(db, "SELECT to_regclass('public.readings') IS NOT NULL")
    return int(await scalar(db, sql)) if exists else 0


async def _tail(proc: asyncio.subprocess.Process) -> str:
    assert proc.stderr is not None
    lines = (await proc.stderr.read()).decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"exit code {proc.returncode}"


async def main(args: argparse.Namespace) -> str:
    with (
        tempfile.TemporaryDirectory() as tmp,
        devservices.postgres(Path(tmp)) as pg,
        devservices.tansu() as bootstrap,
    ):
        cfg = Path(tmp) / "peer.yaml"
        write_config(cfg, args.sensors, args.sites)
        messages = stream(args.sensors, args.sites, args.readings)
        total = sum(len(b) for _, _, b in messages)
        print(f"peer: {total:,} readings in {len(messages):,} messages", flush=True)
        ours, theirs = [], []
        for i in range(args.repeat):
            ours.append(await kafka_rate(pg, bootstrap, cfg, messages))
            topic = f"riskmon.readings.peer.{uuid.uuid4().hex[:6]}"
            await devservices.create_topics(bootstrap, {topic: 4})
            try:
                await produce(bootstrap, topic, messages)
                theirs.append(await peer_rate(pg, bootstrap, topic, total, Path(tmp)))
            finally:
                await devservices.delete_topics(bootstrap, [topic])
            print(f"  run {i + 1}: riskmon {ours[-1]:,.0f}/s, peer {theirs[-1]:,.0f}/s", flush=True)
        a, b = statistics.median(ours), statistics.median(theirs)
        ratios = ", ".join(f"{x / y:.2f}" for x, y in zip(ours, theirs, strict=True))
        return "\n".join([
            f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, {platform.platform()}",
            f"Command: `python -m tests.bench.peer {' '.join(sys.argv[1:])}`",
            "",
            f"{args.sensors:,} gas_combustible detectors on {args.sites} sites, values around "
            f"3 %LEL with a rare 60, {total:,} readings in messages of {PER_MESSAGE}, a Kafka "
            f"topic of 4 partitions; medians of {args.repeat} runs.",
            "",
            "| pipeline | readings/s stored (median) | runs |",
            "|---|---|---|",
            f"| riskmon processor, every shipped pack | {a:,.0f} | {', '.join(f'{v:,.0f}' for v in ours)} |",
            f"| Quix Streams, one threshold with hysteresis, PostgreSQL sink | {b:,.0f} | {', '.join(f'{v:,.0f}' for v in theirs)} |",
            f"| riskmon / peer | {a / b:.2f} | {ratios} (target ≥ 5) |",
        ])  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--consume":
        consume(*sys.argv[2:6])
        sys.exit(0)
    parser = argparse.ArgumentParser()
    parser.add_argument("--sensors", type=int, default=1_000)
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--readings", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path)
    arguments = parser.parse_args()
    table = asyncio.run(main(arguments))
    print(table)
    if arguments.out:
        arguments.out.write_text(table + "\n")
