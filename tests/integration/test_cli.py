"""The ``riskmon`` command as a user runs it: migrate, serve with graceful SIGTERM, demo."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from monitor.devservices import free_port
from monitor.store.db import open_engine
from tests.integration.helpers import now, wait_for

pytestmark = pytest.mark.integration
RISKMON = [sys.executable, "-m", "monitor.cli"]
TOKEN = "cli-test-admin"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROOT = Path(__file__).resolve().parents[2]


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RISKMON_")}
    group = f"cli-{uuid.uuid4().hex[:8]}"  # see tests/conftest.py: a share group per test
    return {**base, "RISKMON_ADMIN_TOKEN": TOKEN, "RISKMON_MQTT_SHARE_GROUP": group, **extra}


async def run(*args: str, environ: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *RISKMON,
        *args,
        env=environ,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode()


async def test_migrate_is_idempotent(database_url: str) -> None:
    environ = env(RISKMON_DATABASE_URL=database_url)
    for _ in range(2):
        code, out = await run("migrate", environ=environ)
        assert code == 0, out
        assert "schema at version" in out
    async with open_engine(database_url) as db, db.connect() as conn:
        rules = (await conn.execute(text("SELECT count(*) FROM rules"))).scalar_one()
        assert rules > 10


async def test_bad_config_gives_clear_error(database_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {id: x, type: threshold, levels: {4: 1, 1: 9}, direction: low}\n")
    code, out = await run(
        "migrate", environ=env(RISKMON_DATABASE_URL=database_url, RISKMON_CONFIG=str(bad))
    )
    assert code == 2 and "levels must" in out


async def test_serve_stops_gracefully_on_sigterm(database_url: str, mqtt_port: int) -> None:
    port = free_port()
    environ = env(
        RISKMON_DATABASE_URL=database_url,
        RISKMON_HTTP_PORT=str(port),
        RISKMON_MQTT_URL=f"mqtt://127.0.0.1:{mqtt_port}",
        RISKMON_MQTT_CLIENT_ID="riskmon-sigterm",
        RISKMON_CONFIG=str(ROOT / "tests" / "data" / "spine.yaml"),
    )
    proc = await asyncio.create_subprocess_exec(
        *RISKMON,
        "serve",
        env=environ,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=AUTH) as api:

            async def ready() -> bool:
                try:
                    return (await api.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(ready, timeout=20)
            t = now()
            r = await api.post(
                "/api/v1/readings",
                json=[{"sensor": "gas-1", "ts": t + i * 0.01, "value": 1.0} for i in range(100)],
            )
            assert r.json()["accepted"] == 100
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 15)
        assert proc.returncode in (0, -signal.SIGTERM), out.decode()
        assert time.monotonic() - started < 15
        assert b"riskmon stopped" in out
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    async with open_engine(database_url) as db, db.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM readings"))).scalar_one() == 100


async def test_demo_raises_graded_alerts(database_url: str, mqtt_port: int) -> None:
    port = free_port()
    environ = env(
        RISKMON_DATABASE_URL=database_url,
        RISKMON_MQTT_URL=f"mqtt://127.0.0.1:{mqtt_port}",
        RISKMON_MQTT_CLIENT_ID="riskmon-demo-test",
    )
    proc = await asyncio.create_subprocess_exec(
        *RISKMON,
        "demo",
        "--port",
        str(port),
        "--leak-at",
        "1",
        "--overfill-at",
        "1",
        env=environ,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its own process group, as in a terminal
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=AUTH) as api:

            async def leak_and_overfill() -> list[dict[str, Any]]:
                try:
                    rows: list[dict[str, Any]] = (
                        await api.get("/api/v1/alerts", params={"state": "open"})
                    ).json()
                except httpx.TransportError:
                    return []
                got = {(a["sensor"], a["level"]) for a in rows}
                want_gas = any(s == "tf-01-gas-01" and lvl <= 3 for s, lvl in got)
                want_tank = any(s == "tf-01-lvl-01" and lvl <= 3 for s, lvl in got)
                return rows if want_gas and want_tank else []

            # a second simulator with its defaults on the same broker: the demo keeps going
            second = await asyncio.create_subprocess_exec(
                *RISKMON, "simulate", "--mqtt", f"mqtt://127.0.0.1:{mqtt_port}",
                "--duration", "3", env=env(), cwd=ROOT,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            out2, _ = await asyncio.wait_for(second.communicate(), 30)
            assert second.returncode == 0, out2.decode()
            rows = await wait_for(leak_and_overfill, timeout=25, interval=0.5)
            quiet = {"tf-01-tmp-01", "tf-02-h2s-01", "tf-02-gas-01", "tf-02-lvl-01"}
            assert not [a for a in rows if a["sensor"] in quiet and a["category"] == "process"]
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        text_out = out.decode()
        assert "API docs" in text_out and "/metrics" in text_out
        assert "riskmon demo stopped" in text_out
        assert "alert opened" in text_out  # the demo prints each alert event
        assert "MqttCodeError" not in text_out and "Traceback" not in text_out
        assert proc.returncode == 0, text_out
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_known_failures_are_one_line_with_exit_2(database_url: str, tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        code, out = await run("demo", "--port", str(port), environ=env())
        assert code == 2 and "port" in out and "in use" in out, out
        assert "riskmon demo is starting" not in out  # checked before the banner
        served = env(RISKMON_DATABASE_URL=database_url, RISKMON_HTTP_PORT=str(port),
                     RISKMON_MQTT_URL="")  # fmt: skip
        code, out = await run("serve", environ=served)
        assert code == 2 and "in use" in out, out
    finally:
        taken.close()
    cases = [
        (("serve",), env(RISKMON_BATCH_MAX_READINGS="lots"), "RISKMON_BATCH_MAX_READINGS"),
        (("simulate", "--mqtt", f"mqtt://127.0.0.1:{free_port()}", "--duration", "1"), env(),
         "MqttError"),
        (("simulate", "--config", str(tmp_path / "missing.yaml")), env(), "missing.yaml"),
    ]  # fmt: skip
    for args, environ, needle in cases:
        code, out = await run(*args, environ=environ)
        assert code == 2, (args, out)
        assert "Traceback" not in out and needle in out, (args, out)
        assert len(out.strip().splitlines()) == 1, (args, out)
