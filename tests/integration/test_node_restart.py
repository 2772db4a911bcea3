"""A single node restarted in the middle of an on-delay and of a 12 h rainfall window still
fires at the right time: killed (SIGKILL, after readings it stored but did not snapshot) or
stopped cleanly.  Before, the windows and delays started empty after any restart.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.testing import TEST_ADMIN_TOKEN, temporary_database
from tests.integration.probe import env, migrate, start, stop

pytestmark = pytest.mark.integration
T0 = 1_780_000_000.0  # 2026-05-28T20:26:40Z
CONFIG = """
sites: [{id: d1, name: dam one, tenant: t1, kind: tailings_dam}]
sensors:
  - {id: rain-1, site: d1, kind: rainfall, unit: mm, expected_interval_s: 1000000}
  - {id: fb-1, site: d1, kind: freeboard, unit: m, expected_interval_s: 1000000}
rules:
  - {id: rain.12h, type: window, selector: {kind: rainfall}, window_s: 43200, agg: sum,
     levels: {3: 50}}
  - {id: fb.low, type: threshold, selector: {kind: freeboard}, direction: low,
     levels: {2: 1.1}, on_delay_s: 60}
"""


async def post(port: int, readings: list[dict[str, Any]]) -> None:
    headers = {"Authorization": f"Bearer {TEST_ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as api:
        for _ in range(200):  # until it answers
            try:
                answer = await api.post("/api/v1/readings", json=readings)
                break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        assert answer.status_code == 200 and answer.json()["accepted"] == len(readings), answer.text


async def alerts(port: int) -> dict[str, tuple[int, str]]:
    headers = {"Authorization": f"Bearer {TEST_ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as api:
        rows = (await api.get("/api/v1/alerts")).json()
    return {a["rule"]: (a["level"], a["opened_at"]) for a in rows}


def rain(k: int, mm: float) -> dict[str, Any]:
    return {"sensor": "rain-1", "ts": T0 + 1800.0 * k, "value": mm}


def freeboard(after_s: float) -> dict[str, Any]:
    return {"sensor": "fb-1", "ts": T0 + 6 * 3600 + after_s, "value": 1.0}


@pytest.mark.parametrize("how", ["sigkill", "sigterm"])
async def test_a_restart_keeps_windows_and_delays(pg_server: str, tmp_path: Path, how: str) -> None:
    config = tmp_path / "dam.yaml"
    config.write_text(CONFIG)
    async with temporary_database(pg_server) as db:
        environ = env(
            db, config, rule_packs="[]", admin_token=TEST_ADMIN_TOKEN, snapshot_interval_s="1"
        )
        port = int(environ["RISKMON_HTTP_PORT"])
        await migrate(environ)
        proc = await start(environ, role="all")
        try:
            # 12 half-hourly readings of 4 mm: 48 mm in 12 h, under 50; freeboard low for 30 s
            await post(port, [rain(k, 4.0) for k in range(12)] + [freeboard(0), freeboard(30)])
            await asyncio.sleep(2.5)  # a periodic snapshot holds this
            await post(port, [rain(12, 1.0), freeboard(40)])  # stored, in no snapshot yet
            if how == "sigkill":
                proc.kill()
                await proc.wait()
            else:
                await stop(proc)
            proc = await start(environ, role="all")
            # 2 mm more: 51 mm in the last 12 h (the first reading at T0 is 6.5 h old)
            await post(port, [rain(13, 2.0), freeboard(60)])
            found = await alerts(port)
        finally:
            await stop(proc)
    assert found["rain.12h"][0] == 3
    assert found["rain.12h"][1].startswith("2026-05-29T02:56:40"), found  # T0 + 6.5 h
    assert found["fb.low"][0] == 2
    # on time: the on-delay started at T0 + 6 h, before the restart, and ran its 60 s
    assert found["fb.low"][1].startswith("2026-05-29T02:27:40"), found
