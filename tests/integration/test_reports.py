"""Alarm KPIs through the API and as metrics."""

from __future__ import annotations

import pytest

from monitor.clock import ManualClock
from monitor.config import Settings
from monitor.testing import running_service
from tests.integration.helpers import alerts, now

pytestmark = pytest.mark.integration


async def test_alarm_load_report(settings: Settings) -> None:
    cfg = settings.model_copy(
        update={"mqtt_url": "", "tick_interval_s": 0.05, "rule_packs": ("hazchem", "city_gas")}
    )
    clock = ManualClock(now())
    async with (
        running_service(cfg, clock=clock) as svc,
        svc.client() as api,
    ):
        t = clock.now()
        # an operator has turned the shipped off-delay off (the pack holds a plume's alert
        # open through dips of 5 min): gas-1 chatters, 12 alerts in a few minutes -> a flood,
        # and the chattering top
        chatty = {"type": "threshold", "selector": {"kind": "gas_combustible"},
                  "levels": {"4": 10, "3": 25, "2": 50}, "deadband": 2}  # fmt: skip
        assert (await api.put("/api/v1/rules/gas_combustible.high", json=chatty)).is_success
        rows = []
        for i in range(12):
            rows += [
                {"sensor": "gas-1", "ts": t + 20 * i, "value": 30},
                {"sensor": "gas-1", "ts": t + 20 * i + 10, "value": 1},
            ]
        await api.post("/api/v1/readings", json=rows)
        await api.post("/api/v1/readings", json={"sensor": "lvl-1", "ts": t, "value": 96})
        (tank,) = [a for a in await alerts(api, state="open") if a["sensor"] == "lvl-1"]
        clock.advance(120)
        await api.post(f"/api/v1/alerts/{tank['id']}/ack", json={"by": "op"})
        clock.advance(60)
        await api.post(
            f"/api/v1/alerts/{tank['id']}/dispose",
            json={
                "by": "op",
                "reason_code": "process_fluctuation",
                "note": "refill stopped",
                "force": True,
                "force_reason": "level falls",
            },
        )
        report = (
            await api.get(
                "/api/v1/reports/alarm-load", params={"since": str(t - 60), "until": str(t + 3600)}
            )
        ).json()
        assert sum(b["alerts"] for b in report["per_10_minutes"]) == 13  # 12 gas-1, the tank
        assert report["floods"] and report["floods"][0]["alerts"] == 13
        assert report["chattering"][0]["sensor"] == "gas-1"
        assert report["chattering"][0]["alerts"] == 12
        assert report["chattering"][0]["changes_per_minute"] >= 3  # ISA-18.2: 3 in a minute
        assert report["bad_actors"][0]["sensor"] == "gas-1"
        assert report["percent_time_in_flood"] > 0 and report["max_per_10_minutes"] == 13
        assert report["priority"]["medium"]["alerts"] == 12  # yellow
        assert report["priority"]["high"]["alerts"] == 1  # the tank's orange
        orange = next(p for p in report["per_level"] if p["level"] == 2)
        assert round(orange["mtta_s"]) == 120, orange
        assert round(orange["mttr_s"]) == 180, orange
        clock.advance(2 * 86400)  # nobody acknowledged gas-1's last alert... it resolved
        stale = (await api.get("/api/v1/reports/alarm-load", params={"since": str(t - 60)})).json()[
            "stale"
        ]
        assert stale == []  # resolved alerts are not waiting for anyone
        metrics = (await api.get("/metrics")).text
        assert 'riskmon_alerts_time_to_acknowledge_seconds_count{level="2"} 1.0' in metrics
        assert "riskmon_alerts_raised_last_10m" in metrics
