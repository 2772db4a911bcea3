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
from tests.integration.helpers import alerts, now, wait_for
from tests.integration.test_notify import Receiver, receiver

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
    clock = ManualClock(now())
    async with receiver() as (rec, base):
        routes = [
            {
                "channel": "webhook",
                "url": f"{base}/binhai",
                "kinds": ["risk"],
                "district": "binhai",
            },
            {"channel": "wecom", "url": f"{base}/city", "kinds": ["risk"], "max_level": 2},
            {"channel": "webhook", "url": f"{base}/alerts"},  # alerts only, as before
        ]
        cfg = settings.model_copy(
            update={
                "mqtt_url": "", "tokens": TOKENS, "tick_interval_s": 0.05,
                "config": Path(__file__).parents[1] / "data" / "risk.yaml",
                "rule_packs": ("common",), "notify_routes": routes, "risk_hold_s": 20,
            }
        )  # fmt: skip
        await _story(cfg, clock, rec)


async def _story(cfg: Settings, clock: ManualClock, rec: Receiver) -> None:
    async with running_service(cfg, clock=clock) as svc:
        admin, acme = svc.client(token="adm"), svc.client(token="op-acme")
        events: list[dict[str, Any]] = []

        async def listen() -> None:
            async with acme.stream("GET", "/api/v1/stream", params={"risk": "true"}) as response:
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
            await settled("tf-1", 4)  # the warnings cleared: blue at the next tick
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
            # every change is stored and streamed, of the level or of a factor (the risk has its
            # own timer, so a red may be stored before and after its SLA tier rises); the levels
            # went blue, orange, red, blue, yellow
            levels = [h["level"] for h in history]
            assert levels == [e["level"] for e in streamed]
            assert [lv for i, lv in enumerate(levels) if i == 0 or lv != levels[i - 1]] == [
                4, 2, 1, 4, 3
            ]  # fmt: skip
            assert [h["factors"] for h in history] == [e["factors"] for e in streamed]
            assert "dam-1" not in {e["site"] for e in events}
            dam = (await admin.get("/api/v1/risk/sites/dam-1")).json()["history"]
            assert [h["level"] for h in dam] == [4, 3, 4]  # back once they report again
            late = await admin.get("/api/v1/risk/sites/tf-1", params={"from": str(clock.now() + 1)})
            assert late.json()["history"] == []
            # risk changes that held 20 s are told, by district and level; alerts as before
            clock.advance(30)  # tf-1's last level (yellow) holds past the 20 s: told

            async def three() -> bool:
                return len(rec.got.get("binhai", [])) >= 3

            await wait_for(three)
            told = [
                (b["risk"]["site"], b["previous_level"], b["risk"]["level"])
                for b in rec.got["binhai"]
            ]
            assert told == [("tf-1", 4, 2), ("tf-1", 2, 1), ("tf-1", 1, 3)], told  # blue: < 20 s
            assert all(b["risk"]["district"] == "binhai" for b in rec.got["binhai"])
            city = [b["markdown"]["content"] for b in rec.got.get("city", [])]
            assert len(city) == 2 and "now 重大 red" in city[1] and "site tf-1" in city[1]
            assert all("event" in b and b["event"] != "risk_changed" for b in rec.got["alerts"])
            log = (await admin.get("/api/v1/notifications", params={"alert": "risk:tf-1"})).json()
            assert {e["status"] for e in log} == {"sent"} and len(log) == 5
            metrics = (await admin.get("/metrics")).text
            for level, district in (("4", "hills"), ("3", "binhai"), ("4", "binhai")):
                line = f'riskmon_sites_at_risk_level{{district="{district}",level="{level}"}} 1.0'
                assert line in metrics


MODEL_TOKENS = [
    {"token": "li", "name": "li", "role": "admin"},
    {"token": "wang", "name": "wang", "role": "admin"},
    {"token": "op-acme", "name": "op-li", "role": "operator", "tenant": "acme"},
]


async def test_a_risk_model_change_is_audited_approved_and_in_force_at_once(
    settings: Settings,
) -> None:
    cfg = settings.model_copy(
        update={
            "mqtt_url": "", "tokens": MODEL_TOKENS, "tick_interval_s": 0.05,
            "config": Path(__file__).parents[1] / "data" / "risk.yaml", "rule_packs": ("common",),
        }
    )  # fmt: skip
    clock = ManualClock(now())
    async with running_service(cfg, clock=clock) as svc:
        li, wang, acme = (
            svc.client(token="li"),
            svc.client(token="wang"),
            svc.client(token="op-acme"),
        )
        async with li, wang, acme:
            rows = [{"sensor": s, "ts": clock.now(), "value": 30} for s in ("gas-a1", "gas-b1")]
            assert (await li.post("/api/v1/readings", json=rows)).is_success
            assert (await _risk(li))["tf-4"]["level"] == 4  # grade 4 with a yellow: blue
            url = "/api/v1/risk/models/major_hazard_source"
            model = (await li.get(url)).json()
            assert model["version"] == 0 and model["changes"] == []
            # a change away from red cells applies at once: grade 4 with a yellow is yellow now
            matrix = [list(r) for r in model["matrix"]]
            matrix[3][2] = 3
            body = {"matrix": matrix}
            applied = await li.put(url, json=body)
            assert applied.status_code == 200 and applied.json()["version"] == 1, applied.text
            assert (await _risk(li))["tf-4"]["level"] == 3
            assert (await _risk(li))["dam-1"]["level"] == 4  # another kind: unchanged
            # a change that can make a red waits for a second person
            matrix[0][2] = 1  # grade 1 with a yellow: red
            proposed = await li.put(url, json={"matrix": matrix})
            assert proposed.status_code == 202, proposed.text
            pid = proposed.json()["proposal"]
            assert "approve" in proposed.json()["how_to_approve"]
            assert (await _risk(li))["tf-1"]["level"] == 2  # the model in force stays
            own = await li.post(f"{url}/proposals/{pid}/approve")
            assert own.status_code == 403 and "second person" in own.json()["detail"]
            assert (await acme.put(url, json=body)).status_code == 403  # an enterprise may not
            ok = await wang.post(f"{url}/proposals/{pid}/approve")
            assert ok.status_code == 200 and ok.json()["version"] == 2, ok.text
            assert (await _risk(li))["tf-1"]["level"] == 1
            assert (await wang.post(f"{url}/proposals/{pid}/approve")).status_code == 409
            audit = (await li.get(url)).json()
            assert [c["changed_by"] for c in audit["changes"]] == ["li", "li (approved by wang)"]
            assert audit["changes"][1]["diff"]["matrix"][1][0][2] == 1
            assert audit["pending"] == []
            # bad models are refused with a reason; unknown kinds are 404
            worse = [list(r) for r in matrix]
            worse[0][0] = 4  # a red warning gives a lower risk than an orange one
            bad = await li.put(url, json={"matrix": worse})
            assert bad.status_code == 422 and "less severe warning" in bad.text
            assert (await li.put("/api/v1/risk/models/nope", json={})).status_code == 404
            listed = {m["name"]: m["version"] for m in (await li.get("/api/v1/risk/models")).json()}
            assert listed["major_hazard_source"] == 2 and listed["default"] == 0
        # the change survives a restart: the store holds it
    async with running_service(cfg, clock=clock) as svc, svc.client(token="li") as li:
        assert (await _risk(li))["tf-1"]["level"] == 1
