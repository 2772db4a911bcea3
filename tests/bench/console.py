"""Console benchmark (``make bench``): does the board keep up in a real browser?

The real service on PostgreSQL with 2,000 active alerts (2,000 combustible-gas detectors over
their yellow set-point on 50 sites), then for ``--seconds`` (60) 100 alert events a second:
each second 100 detectors move between yellow and orange (an escalation or a de-escalation
each).  Headless Chromium shows the board signed in.  Measured in the browser: the events the
page applied against those the server published, the time to draw the board (median and p95,
``performance.now()`` around each render) and how long a change takes to show: every 2 s one
more detector crosses to red, and the time from the POST to its red row on the board is the
latency (median, p95).  Prints a Markdown table; ``--out FILE`` also writes it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from monitor import devservices
from monitor.config import Settings
from monitor.testing import running_service, temporary_database
from tests.integration.test_console_browser import chromium

OPERATOR = {"token": "bench-operator", "name": "op-bench", "role": "operator"}
INGEST = {"token": "bench-ingest", "name": "gateway", "role": "ingest"}
SITES, PER_SITE = 50, 40  # 2,000 detectors
# the alerts the board holds, from its header counts (it draws the most urgent rows only)
COUNTED = """return [...document.querySelectorAll('#counts .count')]
    .reduce((n, c) => n + Number(c.dataset.unack) + Number(c.dataset.ack), 0)"""


def config(path: Path) -> list[str]:
    sensors = [f"g{i:02d}-{j:02d}" for i in range(SITES) for j in range(PER_SITE)]
    path.write_text(
        yaml.safe_dump(
            {
                "sites": [
                    {"id": f"s{i:02d}", "name": f"Tank farm {i}", "tenant": f"e{i % 5}",
                     "kind": "major_hazard_source",
                     "location": {"lat": 31.7 + (i % 10) * 0.03, "lon": 117.1 + (i // 10) * 0.05}}
                    for i in range(SITES)
                ],
                "sensors": [
                    {"id": s, "site": f"s{s[1:3]}", "kind": "gas_combustible", "unit": "%LEL",
                     "expected_interval_s": 1e6}
                    for s in sensors
                ],
                "rules": [  # the shipped set-points, without delays: every change is an event
                    {"id": "gas_combustible.high", "type": "threshold",
                     "selector": {"kind": "gas_combustible"},
                     "levels": {4: 10, 3: 25, 2: 50, 1: 75}, "deadband": 1}
                ],
            }
        )
    )  # fmt: skip
    return sensors


async def post(api: httpx.AsyncClient, readings: list[dict[str, Any]]) -> None:
    r = await api.post("/api/v1/readings", json=readings)
    r.raise_for_status()


async def bench(seconds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, devservices.postgres(Path(tmp) / "pg") as server:
        sensors = config(Path(tmp) / "config.yaml")
        async with temporary_database(server) as db:
            settings = Settings(
                database_url=db, mqtt_url="", config=Path(tmp) / "config.yaml",
                rule_packs=(), tokens=[OPERATOR, INGEST], startup_grace_s=0,
                tick_interval_s=1.0,
            )  # fmt: skip
            async with running_service(settings) as svc:
                return await _run(svc, sensors, seconds, Path(tmp))


async def _run(svc: Any, sensors: list[str], seconds: int, tmp: Path) -> dict[str, Any]:
    published = 0

    def count(events: list[Any]) -> None:
        nonlocal published
        published += len(events)

    svc.runtime.pipeline.listeners.append(count)
    headers = {"Authorization": f"Bearer {INGEST['token']}"}
    async with httpx.AsyncClient(base_url=svc.base_url, headers=headers, timeout=60) as api:
        t = time.time()
        for i in range(0, len(sensors), 500):
            await post(api, [{"sensor": s, "ts": t, "value": 30.0} for s in sensors[i : i + 500]])
        driver = await asyncio.to_thread(chromium, str(tmp / "chromium"))
        try:
            js = driver.execute_script
            await asyncio.to_thread(driver.get, f"{svc.base_url}/console")
            await asyncio.to_thread(js, "localStorage.setItem('riskmon-token', arguments[0])",
                                    OPERATOR["token"])  # fmt: skip
            await asyncio.to_thread(driver.get, f"{svc.base_url}/console")
            start = time.monotonic()
            while await asyncio.to_thread(js, COUNTED) < len(sensors):
                if time.monotonic() - start > 60:
                    raise SystemExit("the board did not show the 2,000 alerts within 60 s")
                await asyncio.sleep(0.2)
            loaded_s = time.monotonic() - start
            await asyncio.to_thread(js, "window.riskmonConsole.renderMs = []")
            applied0 = await asyncio.to_thread(js, "return window.riskmonConsole.events")
            published0 = published
            latencies: list[float] = []
            value = {s: 30.0 for s in sensors}
            churn = [s for s in sensors[100:]]
            probes = iter(sensors[:100])
            began = time.monotonic()
            for second in range(seconds):
                tick = began + second
                batch = churn[(second * 100) % len(churn) :][:100]
                now = time.time()
                readings = []
                for s in batch:
                    value[s] = 55.0 if value[s] < 50 else 30.0
                    readings.append({"sensor": s, "ts": now, "value": value[s]})
                await post(api, readings)
                if second % 2 == 0:
                    probe = next(probes)
                    sent = time.monotonic()
                    await post(api, [{"sensor": probe, "ts": now, "value": 80.0}])
                    selector = "#board tr.l1[data-level='1']"
                    while True:
                        rows = await asyncio.to_thread(
                            js,
                            "return [...document.querySelectorAll(arguments[0])]"
                            ".some(tr => tr.textContent.includes(arguments[1]))",
                            selector,
                            probe,
                        )
                        if rows:
                            latencies.append(time.monotonic() - sent)
                            break
                        if time.monotonic() - sent > 30:
                            latencies.append(float("inf"))
                            break
                        await asyncio.sleep(0.02)
                await asyncio.sleep(max(0.0, tick + 1 - time.monotonic()))
            elapsed = time.monotonic() - began
            await asyncio.sleep(2)  # the last events arrive
            applied = await asyncio.to_thread(js, "return window.riskmonConsole.events") - applied0
            render_ms = await asyncio.to_thread(js, "return window.riskmonConsole.renderMs")
            rows = await asyncio.to_thread(js, COUNTED)
        finally:
            await asyncio.to_thread(driver.quit)
    sent_events = published - published0
    return {
        "alerts": rows,
        "loaded_s": loaded_s,
        "seconds": elapsed,
        "events_published": sent_events,
        "events_per_s": sent_events / elapsed,
        "events_applied": applied,
        "render_ms_median": statistics.median(render_ms),
        "render_ms_p95": statistics.quantiles(render_ms, n=20)[-1],
        "renders": len(render_ms),
        "latency_median_s": statistics.median(latencies),
        "latency_p95_s": statistics.quantiles(latencies, n=20)[-1],
        "probes": len(latencies),
    }


def table(r: dict[str, Any], command: str) -> str:
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    return "\n".join(
        [
            f"Console benchmark ({machine}; `{command}`)",
            "",
            "| measure | value |",
            "|---|---|",
            f"| alerts on the board (the header counts) | {r['alerts']:,} |",
            f"| first load of the board (every alert counted, the most urgent drawn) | {r['loaded_s']:.1f} s |",
            f"| alert events published / s (for {r['seconds']:.0f} s) | {r['events_per_s']:.0f} |",
            f"| events the page applied / published | {r['events_applied']:,} / "
            f"{r['events_published']:,} |",
            f"| board render, median / p95 ({r['renders']} renders) | "
            f"{r['render_ms_median']:.0f} ms / {r['render_ms_p95']:.0f} ms |",
            f"| a new red: POST to its row on the board, median / p95 ({r['probes']} probes) | "
            f"{r['latency_median_s']:.2f} s / {r['latency_p95_s']:.2f} s |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = asyncio.run(bench(args.seconds))
    text = table(result, f"python -m tests.bench.console --seconds {args.seconds}")
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
