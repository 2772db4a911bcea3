"""The readings API picks raw readings or rollups by range, and answers a site at once."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from monitor.config import Settings
from monitor.testing import running_service

pytestmark = pytest.mark.integration


async def test_sensor_and_site_readings_with_downsampling(settings: Settings) -> None:
    # the rollups' timer runs often and catches up to the newest reading
    quiet = settings.model_copy(
        update={"mqtt_url": "", "rollup_interval_s": 0.2, "rollup_lag_s": 0.0}
    )
    end = time.time() // 3600 * 3600
    start = end - 10 * 86400
    async with running_service(quiet) as svc, svc.client(timeout=120) as api:
        for sensor, base in (("gas-1", 1.0), ("gas-2", 2.0)):
            body = [
                {"sensor": sensor, "ts": start + 60 * i, "value": base + (i % 60) / 100}
                for i in range(10 * 1440)
            ]
            assert (await api.post("/api/v1/readings", json=body)).status_code == 200
        span = {"from": start, "to": end}
        long = (await api.get("/api/v1/sensors/gas-1/readings", params=span)).json()
        # the timer catches the rollups up with the newest reading, and the answer stays (the
        # views add what is after the watermark: tests/integration/test_rollup_watermark.py)
        for _ in range(100):
            async with svc.runtime.db.connect() as conn:
                upto = (await conn.execute(text("SELECT upto FROM rollup_watermark"))).scalar_one()
            if upto.timestamp() >= end - 60:
                break
            await asyncio.sleep(0.1)
        assert upto.timestamp() == end - 60  # down to the newest reading's minute
        again = (await api.get("/api/v1/sensors/gas-1/readings", params=span)).json()
        assert again == long
        assert long["bucket"] == "1h" and len(long["readings"]) == 240
        hour = long["readings"][0]
        assert hour["count"] == 60 and hour["min"] == 1.0 and hour["max"] == pytest.approx(1.59)
        assert hour["value"] == pytest.approx(1.295) and hour["last"] == pytest.approx(1.59)
        short = {"from": start, "to": start + 3600}
        raw = (await api.get("/api/v1/sensors/gas-1/readings", params=short)).json()
        assert raw["bucket"] == "raw" and len(raw["readings"]) == 60
        assert raw["readings"][1]["value"] == pytest.approx(1.01)
        minutes = await api.get("/api/v1/sensors/gas-1/readings", params={**short, "bucket": "1m"})
        assert minutes.json()["bucket"] == "1m" and len(minutes.json()["readings"]) == 60
        site = (
            await api.get("/api/v1/sites/s1/readings", params={**span, "kind": "gas_combustible"})
        ).json()
        assert site["bucket"] == "1h" and set(site["series"]) == {"gas-1", "gas-2"}
        assert site["series"]["gas-2"][0]["min"] == 2.0
        bad = await api.get("/api/v1/sensors/gas-1/readings", params={**span, "bucket": "5m"})
        assert bad.status_code == 422
        assert (await api.get("/api/v1/sites/nope/readings")).status_code == 404
