"""Preparing the database at start: migrations, shipped rule packs, the RISKMON_CONFIG file,
and the lock that keeps one single-node process per database."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.config import Settings
from monitor.errors import ConfigError
from monitor.schemas import ConfigFile
from monitor.store import catalog
from monitor.store import rules as rule_store
from monitor.store.db import libpq_url
from monitor.store.migrations import migrate
from rules.engine import load_pack
from rules.spec import RULES_ADAPTER

log = logging.getLogger("riskmon")


async def load_config_file(db: AsyncEngine, path: Path) -> None:
    """Upsert the sites, sensors and rules of a RISKMON_CONFIG file.

    A rule from the file replaces a shipped pack default of the same id, and the file's own
    earlier version; it does not replace a rule someone changed through the API since (a
    restart never undoes an operator's tuning): that conflict is logged in one line."""
    if not path.is_file():
        raise ConfigError(f"RISKMON_CONFIG {str(path)!r} does not exist")
    try:
        doc = ConfigFile.model_validate(yaml.safe_load(path.read_text()) or {})
        rules = RULES_ADAPTER.validate_python(doc.rules)
    except (yaml.YAMLError, ValueError) as err:
        raise ConfigError(f"{path}: {err}") from err
    async with db.begin() as conn:
        for site in doc.sites:
            await catalog.upsert_site(conn, site.to_model())
        for sensor in doc.sensors:
            await catalog.upsert_sensor(conn, sensor.to_model())
        versions = await rule_store.rule_versions(conn)
        for rule in rules:
            writer = versions.get(rule.id, {}).get("updated_by")
            if writer in (None, "config") or str(writer).startswith("pack:"):
                old = await rule_store.save_rule(conn, rule.model_dump(mode="json"), "config")
                if old is not None and str(writer).startswith("pack:"):
                    log.info("rule %s: RISKMON_CONFIG replaces the %s default", rule.id, writer)
            else:
                log.warning(
                    "rule %s in RISKMON_CONFIG is not applied: %s changed it through the API "
                    "since (version %s), and that version stays",
                    rule.id,
                    writer,
                    versions[rule.id].get("version"),
                )


async def prepare_database(settings: Settings, db: AsyncEngine) -> None:
    """Create the database if needed, migrate, load packs and the config file."""
    await migrate(db)
    async with db.begin() as conn:
        for pack in settings.rule_packs:
            for rule in load_pack(pack):
                await rule_store.save_rule(
                    conn, rule.model_dump(mode="json"), f"pack:{pack}", only_if_new=True
                )
    if settings.config is not None:
        await load_config_file(db, settings.config)


SINGLE_NODE_LOCK = 0x52534B31  # "RSK1"


@contextlib.asynccontextmanager
async def single_node(url: str) -> AsyncIterator[None]:
    """One single-node process per database: two would each judge and track alerts on their
    own and collide in the store.  A session lock held for the process's life, on a
    connection of its own (outside the pool)."""
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        got = await (
            await conn.execute("SELECT pg_try_advisory_lock(%s)", [SINGLE_NODE_LOCK])
        ).fetchone()
        if not got or not got[0]:
            raise ConfigError(
                "another riskmon with role all uses this database; to scale out run gateways "
                "and processors (RISKMON_ROLE), or give each single node its own database"
            )
        yield
