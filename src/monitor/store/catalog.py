"""Sites and sensors in the store, and loading them into the in-memory registry."""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.model import Sensor, Site, SiteKind
from monitor.registry import Registry


async def upsert_site(conn: AsyncConnection, site: Site) -> None:
    await conn.execute(
        text(
            """INSERT INTO sites (id, name, tenant, kind, hazard_grade, location, district)
               VALUES (:id, :name, :tenant, :kind, :grade, CAST(:loc AS jsonb), :district)
               ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, tenant = EXCLUDED.tenant,
                 kind = EXCLUDED.kind, hazard_grade = EXCLUDED.hazard_grade,
                 location = EXCLUDED.location, district = EXCLUDED.district,
                 updated_at = now()"""
        ),
        {
            "id": site.id,
            "name": site.name,
            "tenant": site.tenant,
            "kind": site.kind.value,
            "grade": site.hazard_grade,
            "loc": json.dumps(site.location) if site.location else None,
            "district": site.district,
        },
    )


async def upsert_sensor(conn: AsyncConnection, sensor: Sensor) -> int:
    """Insert or update a sensor; returns its stable integer key."""
    row = (
        await conn.execute(
            text(
                """INSERT INTO sensors (id, site, kind, unit, expected_interval_s, tags, location)
                   VALUES (:id, :site, :kind, :unit, :interval, :tags, CAST(:loc AS jsonb))
                   ON CONFLICT (id) DO UPDATE SET site = EXCLUDED.site, kind = EXCLUDED.kind,
                     unit = EXCLUDED.unit, expected_interval_s = EXCLUDED.expected_interval_s,
                     tags = EXCLUDED.tags, location = EXCLUDED.location, updated_at = now()
                   RETURNING key"""
            ),
            {
                "id": sensor.id,
                "site": sensor.site,
                "kind": sensor.kind,
                "unit": sensor.unit,
                "interval": sensor.expected_interval_s,
                "tags": list(sensor.tags),
                "loc": json.dumps(sensor.location) if sensor.location else None,
            },
        )
    ).one()
    return int(row[0])


async def load_registry(conn: AsyncConnection, registry: Registry) -> None:
    for r in await conn.execute(text("SELECT * FROM sites ORDER BY id")):
        m = r._mapping
        registry.add_site(
            Site(
                m["id"],
                m["name"],
                m["tenant"],
                SiteKind(m["kind"]),
                m["hazard_grade"],
                m["location"],
                m["district"],
            )
        )
    for r in await conn.execute(text("SELECT * FROM sensors ORDER BY key")):
        m = r._mapping
        registry.add_sensor(
            Sensor(
                m["id"],
                m["site"],
                m["kind"],
                m["unit"],
                m["expected_interval_s"],
                tuple(m["tags"]),
                m["location"],
            ),
            m["key"],
        )
