"""The outside probe's access, isolation and input findings, against the real service.

Each assertion below answered otherwise before: the admin override passed the two-person rule
alone, ``?token=`` worked on every endpoint, a body's ``by`` renamed the person acting, failed
sign-ins were unlimited, tenant A read B's notification log (with B's webhook URL) and
silences, shelved B's alerts, silenced every tenant, changed shared rules, took over B's site
and sensor ids, and NUL bytes or out-of-range integers answered 500.
"""

from __future__ import annotations

import pytest

from monitor.config import Settings
from monitor.testing import running_service
from tests.integration.helpers import alerts, now, wait_for

pytestmark = pytest.mark.integration
TOKENS = [
    {"token": "op-t1", "name": "op-li", "role": "operator", "tenant": "t1"},
    {"token": "op-t2", "name": "op-wu", "role": "operator", "tenant": "t2"},
    {"token": "adm-t1", "name": "admin-t1", "role": "admin", "tenant": "t1"},
    {"token": "adm-a", "name": "admin-zhang", "role": "admin"},
    {"token": "adm-b", "name": "admin-wang", "role": "admin"},
]
ROUTE = {"channel": "webhook", "url": "http://127.0.0.1:9/secret-key-of-t2"}


async def test_the_person_acting_is_the_person_signed_in(settings: Settings) -> None:
    cfg = settings.model_copy(update={"mqtt_url": "", "tokens": TOKENS, "admin_token": "boot"})
    async with running_service(cfg) as svc:
        boot, a, b = svc.client(token="boot"), svc.client(token="adm-a"), svc.client(token="adm-b")
        op = svc.client(token="op-t1")
        async with boot, a, b, op:
            # a red/orange change proposed under one name, approved under another: refused
            spec = {
                "type": "threshold",
                "selector": {"kind": "gas_combustible"},
                "levels": {"2": 40},
            }
            script = {"X-Riskmon-User": "op-li"}
            put = await boot.put("/api/v1/rules/gas_combustible.high", json=spec, headers=script)
            assert put.status_code == 202 and "approve" in put.json()["how_to_approve"]
            proposal = put.json()["proposal"]
            url = f"/api/v1/rules/gas_combustible.high/proposals/{proposal}/approve"
            alone = await boot.post(url, headers={"X-Riskmon-User": "op-zhao"})
            assert alone.status_code == 403 and "personal token" in alone.json()["detail"]
            assert (await a.post(url)).status_code == 200  # a second person, own token
            # a personal token records its own name, whatever the body says
            await boot.post("/api/v1/readings", json={"sensor": "gas-1", "ts": now(), "value": 45})
            (alert,) = await alerts(op, state="open")
            ack = await op.post(f"/api/v1/alerts/{alert['id']}/ack", json={"by": "someone-else"})
            assert ack.json()["acked_by"] == "op-li"
            # ?token= only on the stream
            token_url = await op.get("/api/v1/alerts", params={"token": "op-t1"}, headers={})
            assert token_url.status_code == 200  # the header still signs in
            async with svc.client(token="") as anon:
                assert (
                    await anon.get("/api/v1/alerts", params={"token": "op-t1"})
                ).status_code == 401
                async with anon.stream("GET", "/api/v1/stream", params={"token": "op-t1"}) as s:
                    assert s.status_code == 200


async def test_failed_sign_ins_are_limited(settings: Settings) -> None:
    cfg = settings.model_copy(update={"mqtt_url": "", "tokens": TOKENS, "auth_failures_max": 3})
    async with running_service(cfg) as svc, svc.client(token="guess") as api:
        codes = [(await api.get("/api/v1/sites")).status_code for _ in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        assert "riskmon_api_sign_in_failures_total" in (await api.get("/metrics")).text


async def test_one_enterprise_never_reaches_another(settings: Settings) -> None:
    cfg = settings.model_copy(update={"mqtt_url": "", "tokens": TOKENS, "notify_routes": [ROUTE]})
    async with running_service(cfg) as svc:
        t1, t2, adm_t1 = (
            svc.client(token="op-t1"),
            svc.client(token="op-t2"),
            svc.client(token="adm-t1"),
        )
        city = svc.client(token="adm-a")
        async with t1, t2, adm_t1, city:
            t = now()
            await city.post("/api/v1/readings", json={"sensor": "ch4-1", "ts": t, "value": 30})
            (theirs,) = await alerts(city, site="s2")  # t2's alert
            await wait_for(lambda: _logged(city, theirs["id"]))
            # t1 sees nothing of t2's notification log; t2 sees its rows without the URL
            assert (await t1.get("/api/v1/notifications")).json() == []
            rows = (await t2.get("/api/v1/notifications")).json()
            assert rows and all("url" not in r for r in rows)
            assert any(r.get("url") for r in (await city.get("/api/v1/notifications")).json())
            # shelving, silencing and deleting across enterprises
            shelve = {"reason": "x", "until": str(t + 600)}
            assert (
                await t1.post(f"/api/v1/alerts/{theirs['id']}/shelve", json=shelve)
            ).status_code == 404
            end = str(t + 600)
            everyone = await t1.post("/api/v1/silences", json={"ends": end, "reason": "x"})
            assert everyone.status_code == 201 and everyone.json()["tenant"] == "t1"
            other = await t1.post(
                "/api/v1/silences", json={"ends": end, "reason": "x", "tenant": "t2"}
            )
            assert other.status_code == 403
            site_b = await t1.post(
                "/api/v1/silences", json={"ends": end, "reason": "x", "site": "s2"}
            )
            assert site_b.status_code == 404
            mine = await t2.post("/api/v1/silences", json={"ends": end, "reason": "t2's own"})
            assert [s["id"] for s in (await t1.get("/api/v1/silences")).json()] == [
                everyone.json()["id"]
            ]
            assert (await t1.delete(f"/api/v1/silences/{mine.json()['id']}")).status_code == 404
            # shared rules and other enterprises' ids
            spec = {"type": "threshold", "selector": {"kind": "manhole_tilt"}, "levels": {"3": 12}}
            assert (
                await adm_t1.put("/api/v1/rules/manhole_tilt.high", json=spec)
            ).status_code == 403
            site = {"id": "s2", "name": "mine now", "tenant": "t1", "kind": "gas_network_zone"}
            assert (await adm_t1.post("/api/v1/sites", json=site)).status_code == 409
            other_tenant = {**site, "id": "s9", "tenant": "t2"}
            assert (await adm_t1.post("/api/v1/sites", json=other_tenant)).status_code == 403
            sensor = {"id": "ch4-1", "site": "s1", "kind": "methane_well", "unit": "%LEL"}
            assert (await adm_t1.post("/api/v1/sensors", json=sensor)).status_code == 409
            # a backtest reads the enterprise's own sensors only
            body = {"rule": {"id": "bt", "type": "threshold", "selector": {"kind": "methane_well"},
                             "levels": {"4": 5}}, "from": str(t - 60), "to": str(t + 60)}  # fmt: skip
            bt = (await adm_t1.post("/api/v1/rules/backtest", json=body)).json()
            assert bt["sensors"] == 0 and bt["readings"] == 0
            assert (await city.post("/api/v1/rules/backtest", json=body)).json()["readings"] == 1


async def _logged(api, alert_id: str) -> bool:  # type: ignore[no-untyped-def]
    rows = (await api.get("/api/v1/notifications", params={"alert": alert_id})).json()
    return bool(rows)


async def test_input_the_store_cannot_take_is_a_422_not_a_500(settings: Settings) -> None:
    cfg = settings.model_copy(update={"mqtt_url": "", "tokens": TOKENS, "admin_token": "boot"})
    async with running_service(cfg) as svc, svc.client(token="boot") as api:
        for path, params in (
            ("/api/v1/alerts/a%00b", {}),
            ("/api/v1/alerts", {"site": "s\x00"}),
            ("/api/v1/notifications", {"limit": "-1"}),
            ("/api/v1/notifications", {"limit": str(2**70)}),
            ("/api/v1/alerts", {"level": str(2**70)}),
            ("/api/v1/sensors/gas-1/readings", {"from": "1e400"}),
            ("/api/v1/alerts", {"since": "2026-05-01T08:00:00"}),  # no zone: not guessed
        ):
            answer = await api.get(path, params=params)
            assert answer.status_code in (404, 422), (path, params, answer.status_code)
        huge = "/api/v1/rules/x/proposals/99999999999999999999/approve"
        async with svc.client(token="adm-a") as person:
            assert (await person.post(huge)).status_code == 422
        nul_site = {"id": "x\x00", "name": "n", "tenant": "t1", "kind": "gas_network_zone"}
        assert (await api.post("/api/v1/sites", json=nul_site)).status_code == 422
