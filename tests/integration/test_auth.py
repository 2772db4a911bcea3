"""Tokens, roles and tenant scoping through the API."""

from __future__ import annotations

import pytest

from monitor.config import Settings
from monitor.testing import running_service
from tests.integration.helpers import now

pytestmark = pytest.mark.integration
TOKENS = [
    {"token": "v-city", "name": "viewer-city", "role": "viewer"},
    {"token": "op-t1", "name": "op-li", "role": "operator", "tenant": "t1"},
    {"token": "op-t2", "name": "op-wu", "role": "operator", "tenant": "t2"},
    {"token": "in-t1", "name": "gateway-t1", "role": "ingest", "tenant": "t1"},
    {"token": "adm", "name": "admin-zhang", "role": "admin"},
]


async def test_roles_and_tenant_scoping(settings: Settings) -> None:
    cfg = settings.model_copy(update={"mqtt_url": "", "tokens": TOKENS})
    async with running_service(cfg) as svc:
        anon, viewer = svc.client(token="nope"), svc.client(token="v-city")
        op1, op2 = svc.client(token="op-t1"), svc.client(token="op-t2")
        ingest, admin = svc.client(token="in-t1"), svc.client(token="adm")
        async with anon, viewer, op1, op2, ingest, admin:
            assert (await anon.get("/healthz")).status_code == 200  # open
            assert (await anon.get("/metrics")).status_code == 200
            assert (await anon.get("/api/v1/alerts")).status_code == 401
            t = now()
            # ingest needs an ingest key; its key only takes its own enterprise's readings
            body = [
                {"sensor": "gas-1", "ts": t, "value": 30},
                {"sensor": "ch4-1", "ts": t, "value": 30},
            ]
            assert (await viewer.post("/api/v1/readings", json=body)).status_code == 403
            r = await ingest.post("/api/v1/readings", json=body)
            assert r.status_code == 200 and r.json()["accepted"] == 1
            assert [x["reason"] for x in r.json()["rejects"]] == ["wrong_tenant"]
            assert (await ingest.get("/api/v1/alerts")).status_code == 403
            (alert,) = (await op1.get("/api/v1/alerts")).json()
            url = f"/api/v1/alerts/{alert['id']}"
            # a viewer reads but may not act; another enterprise does not see it at all
            assert (await viewer.get(url)).status_code == 200
            assert (await viewer.post(f"{url}/ack")).status_code == 403
            assert (await op2.get(url)).status_code == 404
            assert (await op2.post(f"{url}/ack")).status_code == 404
            assert (await op2.get("/api/v1/alerts")).json() == []
            # the operator of the enterprise acts; the store records the token's identity
            ack = await op1.post(f"{url}/ack", json={"by": "someone-else"})
            assert ack.status_code == 200 and ack.json()["acked_by"] == "op-li"
            assert (await op1.put("/api/v1/rules/x", json={})).status_code == 403
            closed = await op1.post(
                f"{url}/dispose",
                json={
                    "reason_code": "test",
                    "note": "drill",
                    "force": True,
                    "force_reason": "drill",
                },
            )
            assert closed.json()["closed_by"] == "op-li"
            # the admin changes rules, recorded under its name
            spec = {"type": "threshold", "selector": {"kind": "manhole_tilt"}, "levels": {"3": 12}}
            assert (
                await admin.put("/api/v1/rules/manhole_tilt.high", json=spec)
            ).status_code == 200
            audit = (await admin.get("/api/v1/rules/manhole_tilt.high")).json()["changes"]
            assert audit[-1]["changed_by"] == "admin-zhang"


async def test_without_tokens_everything_but_health_is_refused(settings: Settings) -> None:
    cfg = settings.model_copy(
        update={"mqtt_url": "", "tokens": [{"token": "x", "name": "x", "role": "viewer"}]}
    )
    async with running_service(cfg) as svc, svc.client(token="") as api:
        assert (await api.get("/readyz")).status_code == 200
        assert (await api.get("/api/v1/sites")).status_code == 401
        assert (await api.post("/api/v1/readings", json=[])).status_code == 401
