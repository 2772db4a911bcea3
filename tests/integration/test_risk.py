"""Dynamic risk through the API, against the real store: the matrix of grade and warning,
blind monitoring, recent real hazards, the roll-ups, and tenant scoping."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.clock import ManualClock
from monitor.config import Settings
from monitor.testing import running_service
from tests.integration.helpers import alerts, now

pytestmark = pytest.mark.integration
TOKENS = [
    {"token": "adm", "name": "admin", "role": "admin"},
    {"token": "op-acme", "name": "op-li", "role": "operator", "tenant": "acme"},
]


async def _risk(api: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    response = await api.get("/api/v1/risk/sites")
    response.raise_for_status()
    return {r["site"]: r for r in response.json()}


def _words(risk: dict[str, Any]) -> str:
    return " | ".join(f["explanation"] for f in risk["factors"])


async def test_risk_follows_grade_warnings_blind_sensors_and_history(settings: Settings) -> None:
    cfg = settings.model_copy(
        update={
            "mqtt_url": "", "tokens": TOKENS, "tick_interval_s": 0.05,
            "config": Path(__file__).parents[1] / "data" / "risk.yaml",
            "rule_packs": ("common",),
        }
    )  # fmt: skip
    clock = ManualClock(now())
    async with running_service(cfg, clock=clock) as svc:
        admin, acme = svc.client(token="adm"), svc.client(token="op-acme")
        events: list[dict[str, Any]] = []

        async def listen() -> None:
            async with acme.stream("GET", "/api/v1/stream") as response:
                kind = ""
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind == "risk":
                        events.append(json.loads(line[6:]))

        async def settled(site: str, level: int) -> None:
            """Wait until the live stream says ``site`` is at ``level`` (the next tick)."""
            for _ in range(200):
                mine = [e for e in events if e["site"] == site]
                if mine and mine[-1]["level"] == level:
                    return
                await asyncio.sleep(0.02)
            raise AssertionError(f"{site} never streamed risk {level}: {events}")

        async with admin, acme:
            listener = asyncio.create_task(listen())
            await asyncio.sleep(0.2)
            t = clock.now()

            async def send(**values: float) -> None:
                rows = [{"sensor": s, "ts": clock.now(), "value": v} for s, v in values.items()]
                assert (await admin.post("/api/v1/readings", json=rows)).is_success

            await send(**{"gas-a1": 2, "gas-a2": 2, "gas-b1": 2, "pz-1": 5, "pz-2": 5, "pz-3": 5})
            risk = await _risk(admin)
            assert {s: r["level"] for s, r in risk.items()} == {"tf-1": 4, "tf-4": 4, "dam-1": 4}
            await settled("tf-1", 4)
            assert risk["tf-1"]["district"] == "binhai"

            # the same yellow warning: grade 1 is orange risk, grade 4 stays blue
            clock.advance(30)
            await send(**{"gas-a1": 30, "gas-a2": 2, "gas-b1": 30, "pz-1": 5, "pz-2": 5})
            risk = await _risk(admin)
            assert risk["tf-1"]["level"] == 2 and risk["tf-4"]["level"] == 4
            assert "grade 1 with a yellow warning gives 较大 orange" in _words(risk["tf-1"])
            assert "grade 4 with a yellow warning gives 低 blue" in _words(risk["tf-4"])
            await settled("tf-1", 2)
            # the leak develops: orange warning on a grade-1 source is red risk
            clock.advance(30)
            await send(**{"gas-a1": 60, "gas-a2": 2, "gas-b1": 30, "pz-1": 5, "pz-2": 5})
            risk = await _risk(admin)
            assert risk["tf-1"]["level"] == 1 and risk["tf-1"]["level_name"] == "重大 red"
            await settled("tf-1", 1)

            # the dam's piezometers pz-1 and pz-2 fall silent: no process alert, but 2 of 3
            # sensors offline raise its risk (pz-3 reports every 10 min: still in time)
            clock.advance(300)
            await send(**{"gas-a1": 60, "gas-a2": 2, "gas-b1": 30, "pz-3": 5})
            for _ in range(100):
                risk = await _risk(admin)
                if risk["dam-1"]["level"] == 3:
                    break
                await asyncio.sleep(0.05)
            assert risk["dam-1"]["level"] == 3, _words(risk["dam-1"])
            assert "2 of 3 sensors offline, stuck or in fault" in _words(risk["dam-1"])
            assert not [a for a in await alerts(admin, site="dam-1") if a["category"] == "process"]

            # roll-ups: the enterprise and the district take their worst site; the city too
            ups = {u["key"]: u for u in (await admin.get("/api/v1/risk/enterprises")).json()}
            assert ups["acme"]["level"] == 1 and ups["acme"]["per_level"] == {"1": 1, "4": 1}
            assert ups["mineco"]["level"] == 3
            districts = {u["key"]: u for u in (await admin.get("/api/v1/risk/districts")).json()}
            assert districts["binhai"]["level"] == 1 and districts["hills"]["level"] == 3
            assert districts["city"]["sites"] == 3 and districts["city"]["level"] == 1
            ranked = (await admin.get("/api/v1/risk/sites", params={"top": 1})).json()
            assert [r["site"] for r in ranked] == ["tf-1"]
            hills = (await admin.get("/api/v1/risk/sites", params={"district": "hills"})).json()
            assert [r["site"] for r in hills] == ["dam-1"]

            # an enterprise sees its own sites only
            own = (await acme.get("/api/v1/risk/sites")).json()
            assert {r["site"] for r in own} == {"tf-1", "tf-4"}
            assert (await acme.get("/api/v1/risk/sites/dam-1")).status_code == 404
            assert (await admin.get("/api/v1/risk/sites/nope")).status_code == 404

            # the leak is handled: readings back to normal, the alert disposed as a real
            # hazard; tf-1 falls back, but a real hazard this week keeps it one level up
            clock.advance(30)
            await send(**{"gas-a1": 2, "gas-a2": 2, "gas-b1": 2, "pz-1": 5, "pz-2": 5, "pz-3": 5})
            for a in await alerts(admin, site="tf-1"):
                await admin.post(f"/api/v1/alerts/{a['id']}/ack", json={})
                closed = await admin.post(
                    f"/api/v1/alerts/{a['id']}/dispose",
                    json={"reason_code": "real_hazard_handled", "note": "valve closed"},
                )
                assert closed.is_success, closed.text
            one = (await admin.get("/api/v1/risk/sites/tf-1")).json()
            assert one["level"] == 3, _words(one)
            assert "1 real hazard(s) handled in the last 7 days: one level up" in _words(one)
            assert t < one["at"]
            await settled("tf-1", 3)
            listener.cancel()
            # the stored changes and the live stream agree; the enterprise saw no other's site
            history = (await admin.get("/api/v1/risk/sites/tf-1")).json()["history"]
            streamed = [e for e in events if e["site"] == "tf-1"]
            assert (
                [h["level"] for h in history] == [e["level"] for e in streamed] == [4, 2, 1, 4, 3]
            )
            assert history[-1]["factors"] == streamed[-1]["factors"]
            assert "dam-1" not in {e["site"] for e in events}
            dam = (await admin.get("/api/v1/risk/sites/dam-1")).json()["history"]
            assert [h["level"] for h in dam] == [4, 3, 4]  # back once they report again
            late = await admin.get("/api/v1/risk/sites/tf-1", params={"from": str(clock.now() + 1)})
            assert late.json()["history"] == []
            metrics = (await admin.get("/metrics")).text
            for level, district in (("4", "hills"), ("3", "binhai"), ("4", "binhai")):
                line = f'riskmon_sites_at_risk_level{{district="{district}",level="{level}"}} 1.0'
                assert line in metrics
