"""The spine end to end against PostgreSQL and Mosquitto (issue 2's "must show")."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from monitor.config import Settings
from monitor.testing import running_service
from tests.integration.helpers import alerts, now, publish, wait_for

pytestmark = pytest.mark.integration
TOPIC = "riskmon/v1/t1/s1/readings"


async def test_mqtt_reading_over_threshold_gives_alert_within_2s(
    settings: Settings, mqtt_port: int
) -> None:
    async with running_service(settings) as svc, svc.client() as api:
        sent = time.monotonic()
        await publish(mqtt_port, TOPIC, {"sensor": "gas-1", "ts": now(), "value": 30.0})
        found = await wait_for(lambda: alerts(api, site="s1", state="open"), timeout=2.0)
        assert time.monotonic() - sent < 2.0
        alert = found[0]
        assert alert["level"] == 3  # 25 %LEL -> yellow
        assert alert["sensor"] == "gas-1"
        assert alert["rule"] == "gas_combustible.high"
        assert alert["category"] == "process"
        assert alert["state"] == "open"
        assert {"id", "site", "opened_at"} <= alert.keys()
        async with svc.runtime.db.connect() as conn:
            row = (await conn.execute(text("SELECT level FROM alerts"))).one()
        assert row.level == 3


async def test_http_batch_gives_alert_and_stores_readings(settings: Settings) -> None:
    async with running_service(settings) as svc, svc.client() as api:
        t = now()
        batch = [
            {"sensor": "ch4-1", "ts": t - 2, "value": 1.0},
            {"sensor": "ch4-1", "ts": int((t - 1) * 1000), "value": 22.0},  # epoch ms
            {"sensor": "gas-2", "ts": "2024-01-01T00:00:00+08:00", "value": 3.0},
        ]
        response = await api.post("/api/v1/readings", json=batch)
        assert response.status_code == 200
        assert response.json()["accepted"] == 3
        found = await wait_for(lambda: alerts(api, site="s2", state="open"), timeout=2.0)
        assert [a["level"] for a in found if a["sensor"] == "ch4-1"] == [2]  # >= 20 -> orange
        readings = (
            await api.get("/api/v1/sensors/ch4-1/readings", params={"from": t - 60, "to": t + 60})
        ).json()
        assert [r["value"] for r in readings["readings"]] == [1.0, 22.0]


MALFORMED: list[tuple[str, bytes, str]] = [
    ("malformed_json", b'{"sensor": "gas-1", "ts": 1', "malformed_json"),
    ("not_utf8", b"\xff\xfe\x00garbage", "malformed_json"),
    ("top_level_number", b"42", "not_object_or_array"),
    ("empty_array", b"[]", "empty_batch"),
    ("reading_is_string", b'["gas-1"]', "reading_not_object"),
    ("missing_sensor", b'{"ts": 1700000000, "value": 1}', "missing_sensor"),
    ("unknown_sensor", b'{"sensor": "nope", "ts": 1700000000, "value": 1}', "unknown_sensor"),
    ("other_site_sensor", b'{"sensor": "ch4-1", "ts": 1700000000, "value": 1}', "wrong_site"),
    ("value_string", b'{"sensor": "gas-1", "ts": 1700000000, "value": "12"}', "value_not_number"),
    ("value_bool", b'{"sensor": "gas-1", "ts": 1700000000, "value": true}', "value_not_number"),
    ("value_nan", b'{"sensor": "gas-1", "ts": 1700000000, "value": NaN}', "value_not_finite"),
    ("value_inf", b'{"sensor": "gas-1", "ts": 1700000000, "value": -Infinity}', "value_not_finite"),
    (
        "value_overflow",
        b'{"sensor": "gas-1", "ts": 1700000000, "value": 1e999}',
        "value_not_finite",
    ),
    ("missing_value", b'{"sensor": "gas-1", "ts": 1700000000}', "missing_value"),
    ("missing_ts", b'{"sensor": "gas-1", "value": 1}', "missing_ts"),
    ("bad_ts_string", b'{"sensor": "gas-1", "ts": "yesterday", "value": 1}', "bad_ts"),
    (
        "naive_iso_ts",
        b'{"sensor": "gas-1", "ts": "2024-01-01T00:00:00", "value": 1}',
        "ts_no_timezone",
    ),
    ("future_ts", b'{"sensor": "gas-1", "ts": 4102444800, "value": 1}', "ts_in_future"),
    ("ancient_ts", b'{"sensor": "gas-1", "ts": 12, "value": 1}', "ts_out_of_range"),
    (
        "bad_quality",
        b'{"sensor": "gas-1", "ts": 1700000000, "value": 1, "quality": "good"}',
        "bad_quality",
    ),
]


async def test_malformed_mqtt_payloads_are_rejected_with_reasons(
    settings: Settings, mqtt_port: int
) -> None:
    async with running_service(settings) as svc, svc.client() as api:
        for _, payload, _ in MALFORMED:
            await publish(mqtt_port, TOPIC, payload, raw=True)
        await publish(
            mqtt_port, "riskmon/v1/t9/s1/readings", {"sensor": "gas-1", "ts": now(), "value": 1}
        )  # wrong tenant
        await publish(
            mqtt_port, "riskmon/v1/t1/nosite/readings", {"sensor": "gas-1", "ts": now(), "value": 1}
        )

        async def all_rejected() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = (await api.get("/api/v1/rejects")).json()
            return rows if len(rows) >= len(MALFORMED) + 2 else []

        rows = await wait_for(all_rejected, timeout=5.0)
        reasons = sorted(r["reason"] for r in rows)
        expected = sorted([reason for _, _, reason in MALFORMED] + ["wrong_tenant", "unknown_site"])
        assert reasons == expected
        assert all(r["raw"] and r["source"] == "mqtt" for r in rows)
        # the service keeps serving
        assert (await api.get("/readyz")).status_code == 200
        metrics = (await api.get("/metrics")).text
        assert (
            'riskmon_ingest_readings_rejected_total{reason="value_not_finite",source="mqtt"} 3.0'
            in metrics
        )


async def test_mixed_batch_keeps_valid_readings(settings: Settings, mqtt_port: int) -> None:
    async with running_service(settings) as svc, svc.client() as api:
        t = now()
        payload = (
            b'[{"sensor": "gas-1", "ts": %f, "value": 1.5}, {"sensor": "gas-1", "value": NaN,'
            b' "ts": %f}, {"sensor": "ghost", "ts": %f, "value": 2}, "junk",'
            b' {"sensor": "gas-2", "ts": %f, "value": 2.5}]' % (t, t, t, t)
        )
        await publish(mqtt_port, TOPIC, payload, raw=True)
        response = await api.post("/api/v1/readings", content=payload)
        body = response.json()
        assert body["accepted"] == 2 and body["rejected"] == 3
        assert sorted(r["reason"] for r in body["rejects"]) == [
            "reading_not_object",
            "unknown_sensor",
            "value_not_finite",
        ]

        async def stored() -> int:
            async with svc.runtime.db.connect() as conn:
                return int((await conn.execute(text("SELECT count(*) FROM readings"))).scalar_one())

        await wait_for(lambda: _ge(stored, 2))
        rejects = await wait_for(lambda: _rejects_at_least(api, 6))
        assert {r["source"] for r in rejects} == {"mqtt", "http"}
        assert await stored() == 2  # the same two readings twice are stored once


async def _ge(probe: Any, n: int) -> bool:
    return bool(await probe() >= n)


async def _rejects_at_least(api: httpx.AsyncClient, n: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await api.get("/api/v1/rejects")).json()
    return rows if len(rows) >= n else []


async def test_threshold_change_through_api_changes_next_verdict(settings: Settings) -> None:
    async with running_service(settings) as svc, svc.client() as api:
        t = now()
        r = await api.post("/api/v1/readings", json=[{"sensor": "ch4-1", "ts": t, "value": 4.0}])
        assert r.json()["accepted"] == 1
        assert await alerts(api, site="s2", state="open") == []
        rule = (await api.get("/api/v1/rules/methane_well.high")).json()
        rule.pop("changes")
        rule["levels"] = {"4": 3, "3": 10, "2": 20, "1": 50}
        put = await api.put(
            "/api/v1/rules/methane_well.high", json=rule, headers={"X-Riskmon-User": "op-li"}
        )
        assert put.status_code == 200, put.text
        r = await api.post(
            "/api/v1/readings", json=[{"sensor": "ch4-1", "ts": t + 1, "value": 4.0}]
        )
        found = await alerts(api, site="s2", state="open")
        assert [(a["sensor"], a["level"]) for a in found] == [("ch4-1", 4)]
        audit = (await api.get("/api/v1/rules/methane_well.high")).json()["changes"]
        assert audit[-1]["changed_by"] == "op-li"
        assert audit[-1]["old"]["levels"]["4"] == 5.0 and audit[-1]["new"]["levels"]["4"] == 3.0
        bad = await api.put(
            "/api/v1/rules/methane_well.high", json={**rule, "levels": {"4": 30, "1": 5}}
        )
        assert bad.status_code == 422
        assert "levels" in bad.text


async def test_oscillation_within_deadband_opens_exactly_one_alert(settings: Settings) -> None:
    async with running_service(settings) as svc, svc.client() as api:
        t = now() - 100
        # gas_combustible yellow at 25 with deadband 2: 23.5..26 oscillation stays one alert
        values = [20, 25.5, 24.0, 25.2, 23.5, 26.0, 24.1, 25.0, 23.1]
        readings = [{"sensor": "gas-1", "ts": t + i, "value": v} for i, v in enumerate(values)]
        for reading in readings:  # one by one, as a device would send them
            await api.post("/api/v1/readings", json=reading)
        found = [a for a in await alerts(api) if a["sensor"] == "gas-1"]
        assert len(found) == 1 and found[0]["level"] == 3 and found[0]["state"] == "open"
        # below 25 - deadband: down to blue (10), same alert; below 10 - 2: resolved
        await api.post("/api/v1/readings", json={"sensor": "gas-1", "ts": t + 20, "value": 22.9})
        found = [a for a in await alerts(api) if a["sensor"] == "gas-1"]
        assert len(found) == 1 and found[0]["level"] == 4 and found[0]["peak_level"] == 3
        await api.post("/api/v1/readings", json={"sensor": "gas-1", "ts": t + 21, "value": 7.9})
        found = [a for a in await alerts(api) if a["sensor"] == "gas-1"]
        assert len(found) == 1 and found[0]["state"] == "resolved"
        history = (await api.get(f"/api/v1/alerts/{found[0]['id']}")).json()["history"]
        assert [h["kind"] for h in history] == ["opened", "escalated", "de-escalated", "resolved"]


async def test_silent_sensor_gets_data_interruption_alert(
    settings: Settings, tmp_path: Path
) -> None:
    # quiet-1 is expected every 0.3 s here only, so it falls silent (0.9 s) in no other test
    chatty = tmp_path / "chatty.yaml"
    chatty.write_text(
        settings.config.read_text().replace(
            'id: quiet-1, site: s2, kind: methane_well, unit: "%LEL", expected_interval_s: 60',
            'id: quiet-1, site: s2, kind: methane_well, unit: "%LEL", expected_interval_s: 0.3',
        )
    )
    assert chatty.read_text() != settings.config.read_text()
    async with (
        running_service(settings.model_copy(update={"config": chatty})) as svc,
        svc.client() as api,
    ):
        found = await wait_for(lambda: _category(api, "data_interruption", "quiet-1"), timeout=5.0)
        assert found[0]["level"] == 4 and found[0]["rule"] == "interruption"
        await api.post("/api/v1/readings", json={"sensor": "quiet-1", "ts": now(), "value": 1})
        back = await alerts(api, state="resolved")
        assert any(a["sensor"] == "quiet-1" for a in back)
        assert await alerts(api, sensor="quiet-1", category="process") == []
        bad = await api.get("/api/v1/alerts", params={"category": "weather"})
        assert bad.status_code == 422 and "category" in bad.text


async def _category(api: httpx.AsyncClient, category: str, sensor: str) -> list[dict[str, Any]]:
    found = await alerts(api, state="open", category=category, sensor=sensor)
    assert all(a["category"] == category and a["sensor"] == sensor for a in found)
    return found


async def test_restart_keeps_open_alerts_without_duplicates(settings: Settings) -> None:
    settings = settings.model_copy(update={"mqtt_url": ""})
    t = now()
    async with running_service(settings) as svc, svc.client() as api:
        await api.post("/api/v1/readings", json={"sensor": "gas-1", "ts": t, "value": 30})
        await api.post("/api/v1/readings", json={"sensor": "lvl-1", "ts": t, "value": 96})
        before = await alerts(api, state="open")
        ack = await api.post(f"/api/v1/alerts/{before[0]['id']}/ack", json={"by": "op-wang"})
        assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"
    async with running_service(settings) as svc, svc.client() as api:
        # the same readings replayed, and more at the same levels
        await api.post(
            "/api/v1/readings",
            json=[
                {"sensor": "gas-1", "ts": t, "value": 30},
                {"sensor": "gas-1", "ts": t + 1, "value": 31},
                {"sensor": "lvl-1", "ts": t + 1, "value": 96.5},
            ],
        )
        after = await alerts(api, state="open,acknowledged")
        assert sorted((a["id"], a["level"]) for a in after) == sorted(
            (a["id"], a["level"]) for a in before
        )
        # the level changes of a restored alert still move the same alert
        await api.post("/api/v1/readings", json={"sensor": "gas-1", "ts": t + 2, "value": 55})
        gas = [a for a in await alerts(api) if a["sensor"] == "gas-1"]
        assert len(gas) == 1 and gas[0]["level"] == 2


async def test_acknowledge_and_dispose(settings: Settings) -> None:
    settings = settings.model_copy(update={"mqtt_url": ""})
    async with running_service(settings) as svc, svc.client() as api:
        await api.post("/api/v1/readings", json={"sensor": "gas-2", "ts": now(), "value": 12})
        alert = (await alerts(api, state="open"))[0]
        url = f"/api/v1/alerts/{alert['id']}"
        assert (
            await api.post(f"{url}/ack", headers={"X-Riskmon-User": "op-zhao"})
        ).status_code == 200
        assert (await api.post(f"{url}/ack")).status_code == 409
        bad = await api.post(f"{url}/dispose", json={"reason_code": "bogus", "note": "x"})
        assert bad.status_code == 422
        close = {"reason_code": "maintenance_calibration", "note": "bump test", "by": "op-zhao"}
        refused = await api.post(f"{url}/dispose", json=close)
        assert refused.status_code == 409  # the gas is still there
        assert "12.0" in refused.json()["detail"] and "set-point 10" in refused.json()["detail"]
        no_reason = await api.post(f"{url}/dispose", json={**close, "force": True})
        assert no_reason.status_code == 409 and "force_reason" in no_reason.json()["detail"]
        done = await api.post(
            f"{url}/dispose", json={**close, "force": True, "force_reason": "bump test gas"}
        )
        assert done.status_code == 200
        body = done.json()
        assert body["state"] == "closed" and body["reason_code"] == "maintenance_calibration"
        assert [h["kind"] for h in body["history"]] == ["opened", "acknowledged", "disposed"]
        assert body["history"][1]["actor"] == "op-zhao"
        assert body["history"][2]["detail"]["force_reason"] == "bump test gas"
        assert body["active"] and not body["waiting"] and body["isa_state"] == "ack_active"
        assert (await api.post("/api/v1/alerts/nope/ack")).status_code == 404


async def test_sites_and_sensors_managed_through_api(settings: Settings) -> None:
    settings = settings.model_copy(update={"mqtt_url": ""})
    async with running_service(settings) as svc, svc.client() as api:
        site = {
            "id": "zone-9",
            "name": "Old town",
            "tenant": "city-gas",
            "kind": "gas_network_zone",
        }
        assert (await api.post("/api/v1/sites", json=site)).status_code == 201
        sensor = {
            "id": "well-9",
            "site": "zone-9",
            "kind": "methane_well",
            "unit": "%LEL",
            "expected_interval_s": 300,
        }
        assert (await api.post("/api/v1/sensors", json=sensor)).status_code == 201
        orphan = {**sensor, "id": "x", "site": "nowhere"}
        # well-formed, but its site is not there: 409 (the fuzzing contract: 422 is bad input)
        assert (await api.post("/api/v1/sensors", json=orphan)).status_code == 409
        bad_kind = {**site, "kind": "volcano"}
        assert (await api.post("/api/v1/sites", json=bad_kind)).status_code == 422
        assert "zone-9" in {s["id"] for s in (await api.get("/api/v1/sites")).json()}
        listed = (await api.get("/api/v1/sensors", params={"site": "zone-9"})).json()
        assert [s["id"] for s in listed] == ["well-9"]
        # the new sensor is judged at once by the default rules for its kind
        r = await api.post("/api/v1/readings", json={"sensor": "well-9", "ts": now(), "value": 55})
        assert r.json()["accepted"] == 1
        found = await alerts(api, site="zone-9")
        assert [(a["rule"], a["level"]) for a in found] == [("methane_well.high", 1)]
        metrics = (await api.get("/metrics")).text
        assert 'riskmon_ingest_readings_accepted_total{source="http"} 1.0' in metrics
        assert 'riskmon_alerts_opened_total{category="process",level="1"} 1.0' in metrics
        assert "riskmon_alerts_event_to_alert_seconds_count 1.0" in metrics
        assert 'riskmon_store_flush_duration_seconds_count{table="readings"}' in metrics


async def test_escalation_on_a_manual_clock_survives_restart(settings: Settings) -> None:
    from monitor.clock import ManualClock

    settings = settings.model_copy(update={"mqtt_url": "", "tick_interval_s": 0.05})
    clock = ManualClock(now())
    async with (
        running_service(settings, clock=clock) as svc,
        svc.client() as api,
    ):
        await api.post("/api/v1/readings", json={"sensor": "ch4-1", "ts": now(), "value": 60})
        (alert,) = await alerts(api, state="open")
        assert alert["level"] == 1 and alert["tier"] == 0
        clock.advance(301)  # red: 5 minutes to acknowledge
        await wait_for(lambda: _tier(api, alert["id"], 1), timeout=5)
    async with (
        running_service(settings, clock=clock) as svc,
        svc.client() as api,
    ):
        clock.advance(300)  # the timer survived the restart: the city is told
        await wait_for(lambda: _tier(api, alert["id"], 2), timeout=5)
        body = (await api.get(f"/api/v1/alerts/{alert['id']}")).json()
        overdue = [h for h in body["history"] if h["kind"] == "overdue"]
        assert [h["detail"]["tier"] for h in overdue] == ["district", "city"]
        url = f"/api/v1/alerts/{alert['id']}"
        assert (await api.post(f"{url}/ack", json={"by": "op-a"})).status_code == 200
        assert (
            await api.post(f"{url}/assign", json={"assignee": "crew-7", "by": "op-a"})
        ).status_code == 200
        assert (await api.post(f"{url}/disposing", json={"by": "crew-7"})).status_code == 200
        assert (
            await api.post(f"{url}/comments", json={"text": "valve shut", "by": "crew-7"})
        ).status_code == 200
        closed = await api.post(
            f"{url}/dispose",
            json={
                "reason_code": "real_hazard_handled",
                "note": "fixed",
                "by": "crew-7",
                "force": True,
                "force_reason": "valve shut, well venting",
            },
        )
        assert closed.json()["state"] == "closed"
        assert (await api.post(f"{url}/review", json={"by": "crew-7"})).status_code == 409
        reviewed = await api.post(f"{url}/review", json={"by": "chief"})
        body = reviewed.json()
        assert body["state"] == "reviewed" and body["assignee"] == "crew-7"
        kinds = [h["kind"] for h in body["history"]]
        assert kinds == [
            "opened",
            "overdue",
            "overdue",
            "acknowledged",
            "assigned",
            "disposing",
            "commented",
            "disposed",
            "reviewed",
        ]


async def _tier(api: httpx.AsyncClient, alert_id: str, tier: int) -> bool:
    return bool((await api.get(f"/api/v1/alerts/{alert_id}")).json()["tier"] >= tier)
