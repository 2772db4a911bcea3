"""The ``riskmon`` command: serve, migrate, simulate, demo, eval."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import aiomqtt
from pydantic import ValidationError

from monitor.config import Settings
from monitor.errors import ConfigError, RiskmonError
from monitor.evaluation import commands as evaluation

log = logging.getLogger("riskmon")
HELP = argparse.ArgumentDefaultsHelpFormatter  # --help shows every default
# package data, found the same way in a checkout and in an installed riskmon
DEMO_CONFIG = Path(str(resources.files("simulators") / "demo.yaml"))


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")


async def _serve(settings: Settings, on_events: Any = None) -> None:
    from monitor.api.app import http_server
    from monitor.app import build_runtime, run_service
    from monitor.heap import freeze_startup_heap

    _check_port(settings.http_host, settings.http_port)
    async with build_runtime(settings) as runtime:
        if on_events is not None:
            runtime.pipeline.listeners.append(on_events)
        server = http_server(runtime, settings.http_host, settings.http_port)
        freeze_startup_heap()  # full collections would walk it all, stalling judging
        await run_service(runtime, server)


async def _migrate(settings: Settings) -> None:
    from monitor.bootstrap import prepare_database
    from monitor.store.db import ensure_database, open_engine
    from monitor.store.migrations import MIGRATIONS

    await ensure_database(settings.database_url)
    async with open_engine(settings.database_url) as db:
        await prepare_database(settings, db)
    print(f"schema at version {MIGRATIONS[-1].version}")


def _simulate(args: argparse.Namespace) -> None:
    if args.scenario or args.load:
        asyncio.run(_play(args))
        return
    from simulators.basic import SimOptions, run

    host, _, port = args.mqtt.removeprefix("mqtt://").partition(":")
    opts = SimOptions(
        host=host,
        port=int(port or 1883),
        interval_s=args.interval,
        duration_s=args.duration,
        leak_at_s=args.leak_at,
        overfill_at_s=args.overfill_at,
        seed=args.seed,
    )
    sent = asyncio.run(run(Path(args.config), opts))
    print(f"published {sent} readings")


async def _play(args: argparse.Namespace) -> None:
    import yaml

    from simulators import player
    from simulators.transport import open_transport

    load = player.LoadOptions(
        args.sensors, args.rate, args.batch, args.duration or 60.0, args.sites, seed=args.seed
    )
    if args.load and args.write_config:
        Path(args.write_config).write_text(yaml.safe_dump(player.load_config(load)))
        print(f"wrote the load run's sites and sensors to {args.write_config}")
        return
    transport = await open_transport(
        args.transport,
        mqtt=args.mqtt,
        kafka=args.kafka,
        http=args.http,
        token=args.token,
        topic=args.topic,
    )
    try:
        if args.scenario:
            sent = await player.play_scenario(Path(args.scenario), transport, args.speed)
        else:
            sent = await player.play_load(load, transport)
    finally:
        await transport.close()
    print(f"sent {sent} readings over {args.transport}")


def _check_port(host: str, port: int) -> None:
    """A port already taken is a one-line error before anything starts (or is printed)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise ConfigError(
                f"port {port} on {host} is in use ({err.strerror}); choose another with "
                "RISKMON_HTTP_PORT, --port or make demo PORT=..."
            ) from None


def _print_events(events: list[Any]) -> None:
    """The demo shows every alert event as it happens."""
    for e in events:
        a = e.alert
        print(
            f"  alert {e.kind.value:<12} level {int(e.level)} {a.rule} "
            f"{a.sensor or a.site} value {a.value}",
            flush=True,
        )


async def _keep_simulating(config: Path, opts: Any) -> None:
    """Run the demo's simulator; a failure (broker gone, session taken) is logged in one line
    and retried, and never stops the service."""
    from simulators.basic import run as simulate

    while True:
        try:
            await simulate(config, opts)
            return
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.error("simulator stopped (%s: %s); restarting in 2 s", type(err).__name__, err)
            await asyncio.sleep(2)


def _demo(args: argparse.Namespace) -> None:
    from monitor import devservices
    from simulators.basic import SimOptions

    config = DEMO_CONFIG
    _check_port("127.0.0.1", args.port)
    work = Path(tempfile.mkdtemp(prefix="riskmon-demo-"))
    with (
        devservices.postgres(work) as pg,
        devservices.mosquitto() as (mhost, mport),
        devservices.tansu() as kafka,
    ):
        asyncio.run(
            devservices.create_topics(kafka, {"riskmon.readings": 4, "riskmon.readings.dlq": 1})
        )
        os.environ.setdefault("RISKMON_KAFKA_BOOTSTRAP_SERVERS", kafka)
        os.environ.setdefault("RISKMON_DATABASE_URL", f"{pg}/riskmon_demo")
        os.environ.setdefault("RISKMON_MQTT_URL", f"mqtt://{mhost}:{mport}")
        os.environ.setdefault("RISKMON_CONFIG", str(config))
        os.environ.setdefault("RISKMON_HTTP_PORT", str(args.port))
        os.environ.setdefault("RISKMON_ADMIN_TOKEN", "demo-admin")
        settings = Settings()
        base = f"http://{settings.http_host}:{settings.http_port}"
        print(
            "\nriskmon demo is starting\n"
            f"  database   {settings.database_url}\n"
            f"  mqtt       {settings.mqtt_url}  (topic riskmon/v1/<tenant>/<site>/readings)\n"
            f"  kafka      {settings.kafka_bootstrap_servers}  (topic {settings.kafka_topic})\n"
            f"  token      {settings.admin_token}  (Authorization: Bearer; the console asks)\n"
            f"  API docs   {base}/docs\n"
            f"  console    {base}/console\n"
            f"  alerts     {base}/api/v1/alerts?state=active\n"
            f"  rules      {base}/api/v1/rules\n"
            f"  rejects    {base}/api/v1/rejects\n"
            f"  metrics    {base}/metrics\n"
            f"A gas leak starts at tf-01-gas-01 after {args.leak_at:g} s and tank tf-01-lvl-01"
            f" overfills after {args.overfill_at:g} s. Alert events are printed below.\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )

        async def main() -> None:
            target = settings.mqtt_host_port or (mhost, mport)
            opts = SimOptions(
                host=target[0],
                port=target[1],
                duration_s=args.duration,
                leak_at_s=args.leak_at,
                overfill_at_s=args.overfill_at,
            )
            service = asyncio.create_task(_serve(settings, _print_events))
            await asyncio.sleep(3)
            sim = asyncio.create_task(_keep_simulating(config, opts))
            if args.duration > 0:
                await asyncio.wait([sim, service], return_when=asyncio.FIRST_COMPLETED)
                if not service.done():
                    os.kill(os.getpid(), signal.SIGTERM)  # the service drains and stops
            try:
                await service  # ends on Ctrl-C or SIGTERM (the service's own handlers)
            finally:
                sim.cancel()
                await asyncio.gather(sim, return_exceptions=True)

        asyncio.run(main())
        print("riskmon demo stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="riskmon", description=__doc__, formatter_class=HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve", formatter_class=HELP, help="run the service (settings from RISKMON_* variables)"
    )
    serve.add_argument(
        "--role",
        choices=["all", "gateway", "processor"],
        default=None,
        help="all (default, single node), gateway (MQTT/HTTP -> Kafka) or "
        "processor (Kafka -> rules, alerts)",
    )
    sub.add_parser(
        "migrate",
        formatter_class=HELP,
        help="create or upgrade the database schema and load rule packs",
    )
    sim = sub.add_parser(
        "simulate",
        formatter_class=HELP,
        help="publish simulated devices: the demo set, a scenario (--scenario) or load (--load)",
    )
    sim.add_argument(
        "--config", default=str(DEMO_CONFIG), help="YAML with sites and sensors (the demo's)"
    )
    sim.add_argument(
        "--mqtt",
        default=os.environ.get("RISKMON_MQTT_URL", "mqtt://127.0.0.1:1883"),
        help="MQTT broker URL",
    )
    sim.add_argument("--interval", type=float, default=1.0, help="seconds between readings")
    sim.add_argument("--duration", type=float, default=0.0, help="seconds; 0 runs until stopped")
    sim.add_argument("--leak-at", type=float, default=10.0, help="seconds until the gas leak")
    sim.add_argument("--overfill-at", type=float, default=20.0, help="seconds until overfill")
    sim.add_argument("--seed", type=int, default=7, help="random seed of the devices")
    sim.add_argument("--scenario", default=None, help="play a scenario YAML over --transport")
    sim.add_argument("--speed", type=float, default=60.0, help="scenario: x real time; 0 = max")
    sim.add_argument("--load", action="store_true", help="load mode (--sensors, --rate, ...)")
    sim.add_argument("--sensors", type=int, default=1000, help="load: sensors")
    sim.add_argument("--sites", type=int, default=100, help="load: sites they are spread over")
    sim.add_argument("--rate", type=float, default=1000.0, help="load: readings per second")
    sim.add_argument("--batch", type=int, default=1, help="load: readings per message")
    sim.add_argument("--write-config", default=None, help="load: write its sites and sensors")
    sim.add_argument("--transport", choices=["mqtt", "kafka", "http"], default="mqtt")
    sim.add_argument(
        "--kafka",
        default=os.environ.get("RISKMON_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        help="Kafka bootstrap servers",
    )
    sim.add_argument("--topic", default="riskmon.readings", help="Kafka readings topic")
    sim.add_argument("--http", default="http://127.0.0.1:8000", help="riskmon base URL")
    sim.add_argument("--token", default=os.environ.get("RISKMON_INGEST_TOKEN"), help="ingest key")
    demo = sub.add_parser(
        "demo", formatter_class=HELP, help="start services, the service and the simulators"
    )
    demo.add_argument("--port", type=int, default=8000, help="HTTP port of the API and console")
    demo.add_argument("--duration", type=float, default=0.0, help="seconds; 0 runs until Ctrl-C")
    demo.add_argument("--leak-at", type=float, default=10.0, help="seconds until the gas leak")
    demo.add_argument("--overfill-at", type=float, default=20.0, help="seconds until overfill")
    evaluation.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "eval":
        return evaluation.run(args)
    try:
        settings = Settings()
        if getattr(args, "role", None):
            settings = settings.model_copy(update={"role": args.role})
        _setup_logging(settings.log_level)
        if args.command == "serve":
            asyncio.run(_serve(settings))
        elif args.command == "migrate":
            asyncio.run(_migrate(settings))
        elif args.command == "simulate":
            _simulate(args)
        elif args.command == "demo":
            _demo(args)
    except RiskmonError as err:
        print(f"riskmon: {err}", file=sys.stderr)
        return 2
    except ValidationError as err:  # a bad RISKMON_ setting
        bad = "; ".join(
            f"RISKMON_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in err.errors()
        )
        print(f"riskmon: bad setting: {bad}", file=sys.stderr)
        return 2
    except (OSError, aiomqtt.MqttError) as err:  # broker down, missing file, refused connection
        print(f"riskmon: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130 if args.command != "demo" else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
