"""Event-time semantics through the service: late readings in their place, too-late ones and
backfilled history as retrospective alerts, replays changing nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text

from monitor.config import Settings
from monitor.testing import running_service
from tests.integration.helpers import alerts, now

pytestmark = pytest.mark.integration


@pytest.fixture
def quiet(settings: Settings) -> Settings:
    return settings.model_copy(update={"mqtt_url": "", "allowed_lateness_s": 300.0})


def post(api: httpx.AsyncClient, rows: list[tuple[str, float, float]], **params: Any) -> Any:
    return api.post(
        "/api/v1/readings",
        params=params,
        json=[{"sensor": s, "ts": t, "value": v} for s, t, v in rows],
    )


async def test_late_reading_is_judged_in_its_place_and_too_late_is_retrospective(
    quiet: Settings,
) -> None:
    async with running_service(quiet) as svc, svc.client() as api:
        t = now() - 60
        await post(api, [("gas-1", t, 1.0), ("gas-1", t + 100, 1.0)])
        await post(api, [("gas-1", t + 40, 30.0)])  # 60 s late: within 300 s
        live = [a for a in await alerts(api) if not a["retrospective"]]
        assert [(a["level"], a["state"]) for a in live] == [(3, "open")]
        assert live[0]["opened_at"].startswith(_iso(t + 40)[:19])
        assert live[0]["evidence"]["late"] is True
        await post(api, [("gas-1", t - 1000, 60.0)])  # far too late
        retro = [a for a in await alerts(api) if a["retrospective"]]
        assert [(a["level"], a["state"], a["active"]) for a in retro] == [(2, "resolved", False)]
        assert retro[0]["fingerprint"].endswith("|retro")
        # the live alert is untouched
        assert [(a["level"], a["state"]) for a in await alerts(api, state="open")] == [(3, "open")]
        # a replay of everything changes nothing
        before = await _history_count(svc)
        await post(
            api,
            [
                ("gas-1", t, 1.0),
                ("gas-1", t + 100, 1.0),
                ("gas-1", t + 40, 30.0),
                ("gas-1", t - 1000, 60.0),
            ],
        )
        assert await _history_count(svc) == before
        assert len(await alerts(api)) == 2


async def test_backfill_raises_only_retrospective_alerts(quiet: Settings) -> None:
    async with running_service(quiet) as svc, svc.client() as api:
        day = now() - 7 * 86400
        history = [("ch4-1", day + 600 * i, v) for i, v in enumerate([1, 2, 8, 12, 25, 9, 3, 1])]
        r = await post(api, history, backfill="true")
        assert r.json()["accepted"] == len(history)
        found = await alerts(api)
        assert found and all(a["retrospective"] and not a["active"] for a in found)
        assert max(5 - a["peak_level"] for a in found) >= 3  # reached orange (20) at least
        # live judgement starts clean: a normal reading now opens nothing
        await post(api, [("ch4-1", now(), 1.0)])
        assert await alerts(api, state="open") == []
        async with svc.runtime.db.connect() as conn:
            stored = (await conn.execute(text("SELECT count(*) FROM readings"))).scalar_one()
        assert stored == len(history) + 1


async def _history_count(svc: Any) -> int:
    async with svc.runtime.db.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM alert_events"))).scalar_one())


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


async def test_a_resend_with_a_shifted_time_is_dropped_on_every_path(quiet: Settings) -> None:
    """NB-IoT resends: the same measurement a few seconds off (a device that stamps again)
    arriving minutes later, late or too late, is dropped before any judgement; a genuine late
    reading of another value is still judged."""
    async with running_service(quiet) as svc, svc.client() as api:
        t = now() - 1200
        await post(api, [("gas-1", t, 60.0), ("gas-1", t + 60, 1.0), ("gas-1", t + 1200, 1.0)])
        before = await _history_count(svc), len(await alerts(api))
        await post(api, [("gas-1", t + 3, 60.0)])  # too late (beyond 300 s), 3 s off
        await post(api, [("gas-1", t + 1197, 1.0)])  # late (within 300 s), 3 s off
        assert (await _history_count(svc), len(await alerts(api))) == before
        assert await _readings(svc) == 3
        assert not [a for a in await alerts(api) if a["retrospective"]]
        await post(api, [("gas-1", t + 1100, 40.0)])  # late and genuine: judged in its place
        assert [a["level"] for a in await alerts(api, state="open")] == [3]
        assert await _readings(svc) == 4


async def _readings(svc: Any) -> int:
    async with svc.runtime.db.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM readings"))).scalar_one())
