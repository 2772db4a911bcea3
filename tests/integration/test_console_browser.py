"""The control-room console in headless Chromium (Debian's chromium and chromium-driver),
against the real service, PostgreSQL and Mosquitto.  Every host but 127.0.0.1 is unresolvable
for the browser, so a page that needed a CDN would fail here.

Screenshots of the main states go to ``$RISKMON_SCREENSHOTS`` (``make screenshots`` points it
at docs/console, which the README shows) or to the test's temporary folder."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from monitor.config import Settings
from monitor.testing import running_service
from tests.integration.helpers import alerts, now

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("chromedriver") is None, reason="chromium-driver missing"),
]
webdriver = pytest.importorskip("selenium.webdriver")

OPERATOR = {"token": "op-chen-token", "name": "op-chen", "role": "operator"}
VIEWER = {"token": "viewer-token", "name": "regulator-li", "role": "viewer"}
INGEST = {"token": "ingest-token", "name": "gateway", "role": "ingest"}
SITES = [  # with coordinates, for the map
    {"id": "s1", "name": "Site one", "tenant": "t1", "kind": "major_hazard_source",
     "location": {"lat": 31.82, "lon": 117.23}},
    {"id": "s2", "name": "Site two", "tenant": "t2", "kind": "gas_network_zone",
     "location": {"lat": 31.86, "lon": 117.30}},
]  # fmt: skip


class Page:
    """One Chromium page, driven from the test's event loop through a thread."""

    def __init__(self, driver: Any, base_url: str, shots: Path) -> None:
        self.driver, self.base_url, self.shots = driver, base_url, shots

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def js(self, script: str, *args: Any) -> Any:
        return await self.run(self.driver.execute_script, script, *args)

    async def open(self, token: str | None = None) -> None:
        await self.run(self.driver.get, f"{self.base_url}/console")
        await self.js("localStorage.clear();")
        if token is not None:
            await self.js("localStorage.setItem('riskmon-token', arguments[0]);", token)
        await self.run(self.driver.get, f"{self.base_url}/console")

    async def until(self, script: str, *args: Any, timeout: float = 10.0, what: str = "") -> Any:
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = await self.js("return " + script, *args)
            if last:
                return last
            await asyncio.sleep(0.1)
        raise AssertionError(f"{what or script}: not within {timeout}s (last: {last!r})")

    async def set(self, element: str, value: str, event: str = "change") -> None:
        """Set a form control as an operator would, and let the page hear it."""
        await self.js(
            "const e = document.getElementById(arguments[0]); e.value = arguments[1];"
            " e.dispatchEvent(new Event(arguments[2]));",
            element,
            value,
            event,
        )

    async def select(self, alert_id: str) -> None:
        """Wait for an alert's row, then click it open (its detail view)."""
        row = "document.querySelector(`#board tr[data-id='${arguments[0]}']`)"
        await self.until(row, alert_id, what=f"the row of {alert_id}")
        await self.js(row + ".click();", alert_id)

    async def status(self) -> str:
        return str(await self.js("return document.getElementById('status').dataset.state"))

    async def board(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self.js(
            """return [...document.querySelectorAll('#board tr')].map(tr => ({
                id: tr.dataset.id, level: Number(tr.dataset.level), isa: tr.dataset.isa,
                unack: tr.classList.contains('unack'), rtn: tr.classList.contains('rtn'),
                age: tr.querySelector('.age').textContent,
                sla: tr.querySelector('.sla').textContent,
                overdue: !!tr.querySelector('.badge.overdue'),
                value: tr.querySelector('.value').textContent,
                opened: tr.querySelector('.opened').textContent,
                text: tr.textContent}))"""
        )
        return rows

    async def counts(self) -> dict[int, tuple[int, int]]:
        found = await self.js(
            """return [...document.querySelectorAll('#counts .count')].map(c =>
                [Number(c.dataset.level), Number(c.dataset.unack), Number(c.dataset.ack)])"""
        )
        return {level: (unack, ack) for level, unack, ack in found}

    async def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        await self.run(self.driver.save_screenshot, str(path))
        return path


def chromium(profile: str) -> Any:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
        # the network is blocked: only riskmon on 127.0.0.1 answers
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",
        "--proxy-bypass-list=127.0.0.1",
        f"--user-data-dir={profile}",
        "--window-size=1500,900",
        "--lang=en-US",
    ):
        options.add_argument(flag)
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Any:
    browser = chromium(str(tmp_path_factory.mktemp("chromium")))
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("RISKMON_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


def console_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"tokens": [OPERATOR, VIEWER, INGEST], "mqtt_url": "", "admin_token": "admin-token"}
    )


async def _with_sites(api: httpx.AsyncClient) -> None:
    for site in SITES:
        (await api.post("/api/v1/sites", json=site)).raise_for_status()


async def post(api: httpx.AsyncClient, sensor: str, value: float, ts: float | None = None) -> None:
    """A reading, sent as a device gateway does (the operator's client only carries the URL)."""
    r = await api.post(
        f"{api.base_url}/api/v1/readings",
        headers={"Authorization": f"Bearer {INGEST['token']}"},
        json={"sensor": sensor, "ts": now() if ts is None else ts, "value": value},
    )
    assert r.status_code == 200, r.text


DISTRICTS = {
    "type": "FeatureCollection",
    "features": [
        {"type": "Feature", "properties": {"name": "Binhai"},
         "geometry": {"type": "Polygon", "coordinates": [
             [[117.20, 31.80], [117.27, 31.80], [117.27, 31.84], [117.20, 31.84], [117.20, 31.80]]]}},
        {"type": "Feature", "properties": {"name": "Hills"},
         "geometry": {"type": "MultiPolygon", "coordinates": [[
             [[117.28, 31.85], [117.32, 31.85], [117.32, 31.88], [117.28, 31.88], [117.28, 31.85]]]]}},
    ],
}  # fmt: skip


@pytest.fixture
async def service(settings: Settings, tmp_path: Path) -> AsyncIterator[Any]:
    outline = tmp_path / "districts.geojson"
    outline.write_text(json.dumps(DISTRICTS))
    cfg = console_settings(settings).model_copy(update={"console_districts": outline})
    async with running_service(cfg) as svc:
        async with svc.client(token="admin-token") as admin:
            await _with_sites(admin)
        yield svc


async def _board_matches_api(page: Page, api: httpx.AsyncClient) -> list[dict[str, Any]]:
    """The board shows exactly the API's active and waiting alerts, with their levels and
    acknowledgement states, and the header counts agree."""
    expected = await alerts(api, state="active,waiting")

    async def same() -> bool:
        rows = await page.board()
        return sorted((r["id"], r["level"], r["unack"]) for r in rows) == sorted(
            (a["id"], a["level"], a["waiting"]) for a in expected
        )

    deadline = time.monotonic() + 5
    while not await same():
        assert time.monotonic() < deadline, (await page.board(), expected)
        await asyncio.sleep(0.1)
    counts = await page.counts()
    for level in (1, 2, 3, 4):
        mine = [a for a in expected if a["level"] == level]
        unack = sum(1 for a in mine if a["waiting"])
        assert counts[level] == (unack, len(mine) - unack), (level, counts)
    return await page.board()


async def test_the_board_follows_open_escalate_clear_and_ack(
    service: Any, driver: Any, shots: Path
) -> None:
    page = Page(driver, service.base_url, shots)
    async with service.client(token=OPERATOR["token"]) as api:
        await page.open()
        await page.until("document.getElementById('status').dataset.state === 'signed-out'")
        await page.js("document.getElementById('token').value = arguments[0];", OPERATOR["token"])
        await page.js("document.getElementById('signin').requestSubmit();")
        await page.until("document.getElementById('status').dataset.state === 'live'")
        assert "op-chen" in await page.js("return document.getElementById('who').textContent")
        # all clear: no alert, and the line says how many sensors report
        await post(api, "gas-2", 3.0)
        await page.until("!document.getElementById('allclear').hidden")
        await page.shot("all-clear")

        await post(api, "gas-1", 30)  # yellow (>= 25)
        (row,) = await _board_matches_api(page, api)
        assert row["level"] == 3 and row["unack"] and "30" in row["value"] and "25" in row["value"]
        assert row["sla"].startswith("ack ≤"), row  # the yellow SLA counts down
        assert len(row["opened"]) == 19 and row["opened"][4] == "-"  # one local format
        await post(api, "ch4-1", 60)  # red (>= 50)
        rows = await _board_matches_api(page, api)
        assert [r["level"] for r in rows] == [1, 3]  # sorted by level
        cue = await page.until(
            "!document.getElementById('cue').hidden && document.getElementById('cue').textContent"
        )
        assert "Site two" in cue and "methane_well.high" in cue and "ch4-1" in cue
        await page.shot("red-unacknowledged")
        # the filters: by level, and the search box
        await page.set("f-level", "3")
        assert [r["level"] for r in await page.board()] == [3]
        await page.set("f-level", "")
        await page.set("f-search", "ch4", "input")
        assert [r["level"] for r in await page.board()] == [1]
        await page.set("f-search", "", "input")
        # sound: once enabled, a tone repeats while a red waits
        await page.js("document.getElementById('sound').click();")
        await page.until("window.riskmonConsole.beeps >= 2", timeout=8, what="a repeating tone")

        await post(api, "gas-1", 55)  # yellow escalates to orange
        rows = await _board_matches_api(page, api)
        assert [r["level"] for r in rows] == [1, 2]
        # the red clears by itself: it stays, flashing, until acknowledged; so does the cue
        await post(api, "ch4-1", 0.5)
        (red,) = [a for a in await alerts(api, state="waiting") if a["level"] == 1]
        assert not red["active"]

        async def cleared_red() -> dict[str, Any] | None:
            return next((r for r in await page.board() if r["isa"] == "rtn_unack"), None)

        deadline = time.monotonic() + 5
        while (rtn := await cleared_red()) is None:
            assert time.monotonic() < deadline, await page.board()
            await asyncio.sleep(0.1)
        assert rtn["unack"] and rtn["rtn"] and rtn["id"] == red["id"]
        assert not await page.js("return document.getElementById('cue').hidden")
        await _board_matches_api(page, api)
        await page.shot("red-cleared-unacknowledged")

        # acknowledge from the detail view: the red leaves the board, the cue goes
        await page.js(
            "document.querySelector(`#board tr[data-id='${arguments[0]}']`).click();", red["id"]
        )
        await page.until("document.getElementById('f-ack')", what="the acknowledge button")
        await page.js("document.getElementById('f-ack').requestSubmit();")
        await page.until("document.getElementById('cue').hidden", what="the cue to go")
        beeps = await page.js("return window.riskmonConsole.beeps")
        await asyncio.sleep(4.5)  # two tone periods: silence once every red is acknowledged
        assert await page.js("return window.riskmonConsole.beeps") == beeps
        rows = await _board_matches_api(page, api)
        assert [r["level"] for r in rows] == [2]
        stored = await api.get(f"/api/v1/alerts/{red['id']}")
        assert stored.json()["acked_by"] == "op-chen"


async def test_an_overdue_red_shows_its_badge_and_tier_as_the_server_escalates(
    settings: Settings, driver: Any, shots: Path
) -> None:
    """A red nobody acknowledges within its SLA goes up a tier on the server: the board's row
    shows it, overdue, at that tier, as the API does."""
    cfg = console_settings(settings).model_copy(
        update={"sla_ack_s": {1: 2.0, 2: 900.0, 3: 1800.0, 4: 7200.0}}
    )
    async with running_service(cfg) as svc, svc.client(token=OPERATOR["token"]) as api:
        page = Page(driver, svc.base_url, shots)
        await page.open(OPERATOR["token"])
        await page.until("document.getElementById('status').dataset.state === 'live'")
        await post(api, "ch4-1", 60)
        deadline = time.monotonic() + 10
        while not [a for a in await alerts(api, state="active") if a["tier"] >= 1]:
            assert time.monotonic() < deadline, "the server did not escalate the red"
            await asyncio.sleep(0.2)
        await page.until(
            "document.querySelector('#board tr.l1 .badge.tier') &&"
            " document.querySelector('#board tr.l1 .badge.overdue')",
            what="the overdue and tier badges",
        )
        (row,) = await page.board()
        assert row["overdue"] and "OVERDUE" in row["sla"] and "tier 1" in row["sla"], row
        await page.shot("red-overdue-tier")


async def test_sign_in_states_are_distinct(service: Any, driver: Any, shots: Path) -> None:
    page = Page(driver, service.base_url, shots)
    await page.open()
    await page.until("document.getElementById('status').dataset.state === 'signed-out'")
    assert await page.js("return !document.getElementById('banner').hidden")
    await page.shot("not-signed-in")
    await page.open("not-a-token")
    await page.until("document.getElementById('status').dataset.state === 'rejected'")
    assert "rejected" in await page.js("return document.getElementById('status').textContent")
    await page.shot("token-rejected")
    await page.open(VIEWER["token"])
    await page.until("document.getElementById('status').dataset.state === 'live'")
    assert await page.js("return document.getElementById('banner').hidden")
    assert "regulator-li" in await page.js("return document.getElementById('who').textContent")


async def test_a_restart_is_shown_and_the_gap_is_filled(
    settings: Settings, driver: Any, shots: Path
) -> None:
    cfg = console_settings(settings)
    async with running_service(cfg) as svc:
        port = int(svc.base_url.rsplit(":", 1)[1])
        async with svc.client(token="admin-token") as admin:
            await _with_sites(admin)
        page = Page(driver, svc.base_url, shots)
        await page.open(OPERATOR["token"])
        await page.until("document.getElementById('status').dataset.state === 'live'")
    await page.until(
        "document.getElementById('status').dataset.state === 'disconnected'", timeout=10
    )
    assert "disconnected since" in await page.js(
        "return document.getElementById('status').textContent"
    )
    await page.shot("disconnected")
    async with running_service(cfg, port=port) as svc, svc.client(token=OPERATOR["token"]) as api:
        await post(api, "ch4-1", 60)  # raised before the page is back (it retries every 2 s)
        await page.until("document.getElementById('status').dataset.state === 'live'")
        rows = await _board_matches_api(page, api)
        assert [r["level"] for r in rows] == [1]


async def test_a_disposal_through_the_form_stores_person_reason_and_note(
    service: Any, driver: Any, shots: Path
) -> None:
    page = Page(driver, service.base_url, shots)
    async with service.client(token=OPERATOR["token"]) as api:
        await post(api, "gas-1", 30)
        await post(api, "gas-1", 3)  # cleared: closing needs no force
        (alert,) = await alerts(api, state="waiting")
        await page.open(OPERATOR["token"])
        await page.select(alert["id"])
        await page.until("document.getElementById('f-dispose')")
        # comment, assign and shelve through their forms, each recorded as the person signed in
        for form, fill in (
            ("f-comment", "f.text.value = 'gas crew on the way'"),
            ("f-assign", "f.assignee.value = 'crew-2'"),
            ("f-shelve", "f.reason.value = 'crew on site'; f.minutes.value = '60'"),
        ):
            await page.js(
                f"const f = document.getElementById('{form}'); {fill}; f.requestSubmit();"
            )
            await page.until(
                "document.getElementById('d-msg').textContent.includes('done')", what=form
            )
            await page.js("document.getElementById('d-msg').textContent = ''")
            await page.until(f"document.getElementById('{form}')", what=f"{form} again")
        history = (await api.get(f"/api/v1/alerts/{alert['id']}")).json()["history"]
        acted = {h["kind"]: h["actor"] for h in history}
        assert {k: acted.get(k) for k in ("commented", "assigned", "shelved")} == dict.fromkeys(
            ("commented", "assigned", "shelved"), "op-chen"
        ), history
        await page.js(
            """const f = document.getElementById('f-dispose');
               f.reason_code.value = 'process_fluctuation';
               f.note.value = 'valve V-3 opened for sampling';"""
        )
        await page.shot("dispose-form")
        await page.js("document.getElementById('f-dispose').requestSubmit();")
        await page.until("document.getElementById('d-msg').textContent.includes('done')")
    async with service.runtime.db.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT state, closed_by, reason_code, note FROM alerts WHERE id = :id"),
                {"id": alert["id"]},
            )
        ).one()
    assert tuple(row) == (
        "closed",
        "op-chen",
        "process_fluctuation",
        "valve V-3 opened for sampling",
    )


async def test_the_detail_shows_a_days_trend_with_set_points(
    service: Any, driver: Any, shots: Path
) -> None:
    page = Page(driver, service.base_url, shots)
    t0 = now() - 86400
    day = [{"sensor": "gas-1", "ts": t0 + 60 * i, "value": 3 + (i % 7) * 0.3} for i in range(1430)]
    async with service.client(token=INGEST["token"]) as gateway:
        r = await gateway.post("/api/v1/readings", params={"backfill": "true"}, json=day)
        assert r.status_code == 200, r.text
    async with service.client(token=OPERATOR["token"]) as api:
        await post(api, "gas-1", 55)
        (alert,) = await alerts(api, state="active")
        await page.open(OPERATOR["token"])
        await page.select(alert["id"])
        points = await page.until("Number(document.getElementById('d-trend').dataset.points)")
        assert points >= 700  # a day of readings (or its rollups) around the alert
        setpoints = await page.js("return document.getElementById('d-trend').dataset.setpoints")
        assert {float(v) for v in setpoints.split(",")} == {10.0, 25.0, 50.0}
        assert await page.until("document.querySelector('#d-trend canvas')")
        evidence = await page.js("return document.getElementById('d-evidence').textContent")
        assert "50" in evidence and "gas-1" in evidence and "gas_combustible.high" in evidence
        # the map colours the site by its worst active level
        colour = await page.js(
            "return document.querySelector('#map circle[data-site=s1]').dataset.level"
        )
        assert colour == "2"
        assert await page.js("return document.querySelectorAll('#map path.district').length") == 2
        # the risk map: each site coloured by its live risk level, as the risk API says
        risk = {r["site"]: r["level"] for r in (await api.get("/api/v1/risk/sites")).json()}
        await page.set("map-mode", "risk")
        shown = await page.until(
            "[...document.querySelectorAll('#map circle')].every(c => c.dataset.risk) &&"
            " Object.fromEntries([...document.querySelectorAll('#map circle')]"
            ".map(c => [c.dataset.site, Number(c.dataset.risk)]))"
        )
        assert shown == {site: risk[site] for site in shown} and set(shown) == {"s1", "s2"}
        await page.shot("risk-map")
        await page.set("map-mode", "alerts")
        await page.shot("alert-detail")
        await page.js("document.getElementById('lang').click();")
        await page.until("document.documentElement.lang === 'zh-CN'")
        assert "橙色" in await page.js("return document.getElementById('board').textContent")
        await page.shot("alert-detail-zh")


async def test_docs_render_with_the_network_blocked(service: Any, driver: Any, shots: Path) -> None:
    page = Page(driver, service.base_url, shots)
    await page.run(driver.get, f"{service.base_url}/docs")
    title = await page.until(
        "document.querySelector('.swagger-ui .info .title') &&"
        " document.querySelector('.swagger-ui .info .title').textContent"
    )
    assert "riskmon" in title
    assert await page.until("document.querySelector('.swagger-ui .btn.authorize')")
    hosts = await page.js(
        "return performance.getEntriesByType('resource').map(e => new URL(e.name).host)"
    )
    assert set(hosts) <= {service.base_url.removeprefix("http://")}, hosts
    await page.shot("docs")
