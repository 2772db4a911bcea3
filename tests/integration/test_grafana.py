"""Every Grafana dashboard loads, and every SQL panel, variable and annotation query runs,
with Grafana's macros expanded, against a populated schema on both store paths."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import yaml
from sqlalchemy import text

from tests.integration.grafana_macros import expand
from tests.integration.store_paths import PATHS, batch, store

pytestmark = pytest.mark.integration
GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
STORE_UID = "riskmon-store"


def _queries(dashboard: dict) -> list[tuple[str, str]]:
    """(where, SQL) of every store query: panel targets, variables, annotations."""
    out = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            if target["datasource"]["uid"] == STORE_UID:
                out.append((f"panel {panel['title']!r} {target['refId']}", target["rawSql"]))
    for var in dashboard["templating"]["list"]:
        if var.get("datasource", {}).get("uid") == STORE_UID:
            out.append((f"variable {var['name']}", var["query"]))
    for anno in dashboard["annotations"]["list"]:
        if anno.get("datasource", {}).get("uid") == STORE_UID:
            out.append((f"annotation {anno['name']}", anno["target"]["rawSql"]))
    return out


def test_dashboards_and_provisioning_are_complete() -> None:
    titles = {json.loads(p.read_text())["title"] for p in DASHBOARDS}
    assert titles == {
        "riskmon · city overview",
        "riskmon · site detail",
        "riskmon · sensor detail",
        "riskmon · pipeline health",
    }
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/riskmon.yml").read_text())
    kinds = {d["uid"]: d["type"] for d in sources["datasources"]}
    assert kinds == {
        "riskmon-store": "grafana-postgresql-datasource",
        "riskmon-prometheus": "prometheus",
    }
    uids = {STORE_UID, "riskmon-prometheus", "-- Grafana --"}
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            assert panel["targets"], (path.name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] in uids
    city = json.loads((GRAFANA / "dashboards/city-overview.json").read_text())
    assert "geomap" in {p["type"] for p in city["panels"]}


async def _populate(s) -> None:  # type: ignore[no-untyped-def]
    now = time.time()
    async with s.db.begin() as conn:
        await conn.execute(
            text(
                """INSERT INTO sites (id, name, tenant, kind, location) VALUES
               ('s1', 'Tank farm', 't1', 'major_hazard_source', '{"lat": 31.82, "lon": 117.23}'),
               ('s2', 'Gas zone', 't2', 'gas_network_zone', '{"lat": 31.84, "lon": 117.25}')"""
            )
        )
        await conn.execute(
            text(
                """INSERT INTO sensors (id, site, kind, unit) VALUES
               ('gas-1', 's1', 'gas_combustible', '%LEL'), ('ch4-1', 's2', 'methane_well', '%LEL')"""
            )
        )
        await conn.execute(
            text(
                """INSERT INTO rules (id, type, spec, updated_by) VALUES ('gas.high', 'threshold',
               '{"id": "gas.high", "type": "threshold", "selector": {"kind": "gas_combustible"},
                 "levels": {"1": 50, "2": 25, "3": 20, "4": 10}}', 'test')"""
            )
        )
        for i, (level, active) in enumerate([(1, True), (3, True), (4, False)] * 5):
            opened = datetime.fromtimestamp(now - 3600 + i * 60, UTC)
            await conn.execute(
                text(
                    """INSERT INTO alerts (id, fingerprint, rule, sensor, site, category, level,
                         peak_level, state, active, opened_at, updated_at, resolved_at)
                       VALUES (:id, :fp, 'gas.high', 'gas-1', 's1', 'process', :lvl, :lvl,
                         :state, :active, :at, :at, :resolved)"""
                ),
                {"id": f"a{i}", "fp": f"gas.high|gas-1|{i}", "lvl": level, "active": active,
                 "state": "open" if active else "closed", "at": opened,
                 "resolved": None if active else opened},
            )  # fmt: skip
            await conn.execute(
                text(
                    """INSERT INTO alert_events (alert_id, kind, level, ts, at)
                       VALUES (:id, 'raised', :lvl, :at, :at)"""
                ),
                {"id": f"a{i}", "lvl": level, "at": opened},
            )
        for site, level, ago in (("s1", 4, 7200), ("s1", 2, 1800), ("s2", 4, 3600)):
            await conn.execute(
                text(
                    """INSERT INTO risk_history (site, at, level, score, factors) VALUES (:site,
                         :at, :level, :score, CAST(:factors AS jsonb))"""
                ),
                {"site": site, "at": datetime.fromtimestamp(now - ago, UTC), "level": level,
                 "score": 80 - 15 * level,
                 "factors": json.dumps([{"factor": "warning", "explanation": "risk matrix"}])},
            )  # fmt: skip
        keys = dict((await conn.execute(text("SELECT id, key FROM sensors"))).all())
        await s.partitions.ensure_ahead(conn, now, 1)
    ts = now - 6 * 3600 + np.arange(0, 6 * 3600, 30.0)
    for sensor in ("gas-1", "ch4-1"):
        await s.write(batch(np.full(ts.size, keys[sensor]), ts, 5 + np.sin(ts / 600)))
    await s.refresh()


@pytest.mark.parametrize("path", PATHS)
async def test_every_sql_panel_query_runs_on_both_store_paths(path: str, pg_server: str) -> None:
    end = datetime.fromtimestamp(time.time() + 60, UTC)
    start = datetime.fromtimestamp(time.time() - 24 * 3600, UTC)
    variables = {"site": "s1", "sensor": "gas-1"}
    async with store(path, pg_server) as s:
        await _populate(s)
        ran, with_rows = 0, 0
        async with s.db.connect() as conn:
            for board in DASHBOARDS:
                for where, raw in _queries(json.loads(board.read_text())):
                    sql = expand(raw, start, end, variables, timescaledb=s.timescale)
                    try:
                        rows = (await conn.execute(text(sql))).all()
                    except Exception as err:  # name the panel in the failure
                        raise AssertionError(f"{board.name}: {where}: {err}") from err
                    ran += 1
                    with_rows += bool(rows)
                    if (
                        "Readings of" in where
                        or "threshold bands" in where
                        or "risk" in where.lower()
                    ):
                        assert rows, f"{board.name}: {where} returned nothing"
                    if "Risk ranking" in where:  # the latest change of each site, worst first
                        assert [(r.site, r.level) for r in rows] == [("s1", 2), ("s2", 4)]
        assert ran >= 15
        # Flood periods need more than 10 alerts in 10 minutes; the rest show data.
        assert with_rows >= ran - 1


async def test_threshold_bands_are_per_rule_and_direction(pg_server: str) -> None:
    """A high and a low rule of one kind draw their own bands (they were mixed into one line
    per colour); rules that do not select the sensor (another site, a tag it lacks, disabled)
    draw none."""
    rules = {
        "gas.low": {"direction": "low", "levels": {"3": 1, "4": 2}},
        "gas.other_site": {"selector": {"kind": "gas_combustible", "site": "s2"}, "levels": {"1": 9}},
        "gas.tagged": {"selector": {"kind": "gas_combustible", "tags": ["indoor"]}, "levels": {"1": 8}},
        "gas.off": {"enabled": False, "levels": {"1": 7}},
        "gas.by_id": {"selector": {"sensor": "gas-1"}, "levels": {"2": 30}},
    }  # fmt: skip
    board = json.loads((GRAFANA / "dashboards/sensor-detail.json").read_text())
    [raw] = [
        sql for where, sql in _queries(board) if "threshold bands" in where and "levels" in sql
    ]
    end = datetime.fromtimestamp(time.time(), UTC)
    async with store(PATHS[0], pg_server) as s:
        await _populate(s)
        async with s.db.begin() as conn:
            for rule_id, spec in rules.items():
                body = {"id": rule_id, "type": "threshold", "selector": {"kind": "gas_combustible"}}
                await conn.execute(
                    text("INSERT INTO rules (id, type, spec, updated_by) VALUES (:id, 'threshold', "
                         "CAST(:spec AS jsonb), 'test')"),
                    {"id": rule_id, "spec": json.dumps({**body, **spec})},
                )  # fmt: skip
            sql = expand(raw, end.replace(hour=0), end, {"sensor": "gas-1"}, timescaledb=False)
            rows = (await conn.execute(text(sql))).all()
    bands = {(metric, value) for _, metric, value in rows}
    assert bands == {
        ("gas.high (high) red", 50), ("gas.high (high) orange", 25),
        ("gas.high (high) yellow", 20), ("gas.high (high) blue", 10),
        ("gas.low (low) yellow", 1), ("gas.low (low) blue", 2),
        ("gas.by_id (high) orange", 30),
    }  # fmt: skip
    assert len(rows) == 2 * len(bands)  # each band spans the panel: from and to
    colours = [o["matcher"]["options"] for o in board["panels"][0]["fieldConfig"]["overrides"]]
    assert [c for c in colours if "red" in c] == [r".*\) red$"]
