"""Versioned schema migrations, applied by ``riskmon migrate`` and at start.

Each migration is a list of SQL statements; the readings table differs between TimescaleDB
(hypertable) and plain PostgreSQL (native range partitions, created ahead by the service).
Migrations run under an advisory lock so that several processes can start at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store.db import has_timescaledb

log = logging.getLogger(__name__)
LOCK_ID = 0x5249534B  # "RISK"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: Callable[[bool], list[str]]


def _init(timescale: bool) -> list[str]:
    readings = [
        """CREATE TABLE readings (
            sensor_key integer NOT NULL,
            ts timestamptz NOT NULL,
            value double precision NOT NULL,
            quality smallint NOT NULL DEFAULT 0,
            received_at timestamptz NOT NULL,
            PRIMARY KEY (sensor_key, ts)
        )"""
        + ("" if timescale else " PARTITION BY RANGE (ts)")
    ]
    if timescale:
        readings = [
            "CREATE EXTENSION IF NOT EXISTS timescaledb",
            *readings,
            "SELECT create_hypertable('readings', 'ts', chunk_time_interval => interval '1 day')",
        ]
    return [
        """CREATE TABLE sites (
            id text PRIMARY KEY,
            name text NOT NULL,
            tenant text NOT NULL,
            kind text NOT NULL,
            hazard_grade smallint,
            location jsonb,
            updated_at timestamptz NOT NULL DEFAULT now()
        )""",
        """CREATE TABLE sensors (
            key serial UNIQUE,
            id text PRIMARY KEY,
            site text NOT NULL REFERENCES sites(id),
            kind text NOT NULL,
            unit text NOT NULL,
            expected_interval_s double precision NOT NULL DEFAULT 60,
            tags text[] NOT NULL DEFAULT '{}',
            location jsonb,
            updated_at timestamptz NOT NULL DEFAULT now()
        )""",
        *readings,
        """CREATE TABLE rejects (
            id bigserial PRIMARY KEY,
            received_at timestamptz NOT NULL,
            source text NOT NULL,
            topic text,
            reason text NOT NULL,
            detail text,
            raw text NOT NULL
        )""",
        "CREATE INDEX rejects_received ON rejects (received_at)",
        """CREATE TABLE rules (
            id text PRIMARY KEY,
            type text NOT NULL,
            spec jsonb NOT NULL,
            version integer NOT NULL DEFAULT 1,
            updated_at timestamptz NOT NULL DEFAULT now(),
            updated_by text NOT NULL
        )""",
        """CREATE TABLE rule_changes (
            id bigserial PRIMARY KEY,
            rule_id text NOT NULL,
            changed_at timestamptz NOT NULL DEFAULT now(),
            changed_by text NOT NULL,
            old jsonb,
            new jsonb NOT NULL
        )""",
        """CREATE TABLE alerts (
            id text PRIMARY KEY,
            fingerprint text NOT NULL,
            rule text NOT NULL,
            sensor text,
            site text NOT NULL,
            category text NOT NULL,
            level smallint NOT NULL,
            peak_level smallint NOT NULL,
            state text NOT NULL,
            active boolean NOT NULL,
            retrospective boolean NOT NULL DEFAULT false,
            value double precision,
            evidence jsonb NOT NULL DEFAULT '{}',
            opened_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            resolved_at timestamptz,
            acked_at timestamptz,
            acked_by text,
            closed_at timestamptz,
            closed_by text,
            reason_code text,
            note text
        )""",
        "CREATE UNIQUE INDEX alerts_one_active ON alerts (fingerprint) WHERE active",
        "CREATE INDEX alerts_state_level ON alerts (state, level)",
        "CREATE INDEX alerts_site_opened ON alerts (site, opened_at)",
        """CREATE TABLE alert_events (
            id bigserial PRIMARY KEY,
            alert_id text NOT NULL REFERENCES alerts(id),
            kind text NOT NULL,
            level smallint NOT NULL,
            previous_level smallint,
            ts timestamptz NOT NULL,
            at timestamptz NOT NULL,
            actor text,
            detail jsonb NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX alert_events_alert ON alert_events (alert_id, id)",
    ]


def _partition_state(timescale: bool) -> list[str]:
    return [
        # Replays after a crash or a rebalance must not duplicate history.
        "CREATE UNIQUE INDEX alert_events_once ON alert_events (alert_id, kind, ts, level)",
        """CREATE TABLE state_snapshots (
            topic text NOT NULL,
            partition integer NOT NULL,
            next_offset bigint NOT NULL,
            taken_at timestamptz NOT NULL DEFAULT now(),
            sensors integer NOT NULL,
            state bytea NOT NULL,
            PRIMARY KEY (topic, partition)
        )""",
    ]


def _governance(timescale: bool) -> list[str]:
    return [
        """CREATE TABLE rule_proposals (
            id bigserial PRIMARY KEY,
            rule_id text NOT NULL,
            spec jsonb NOT NULL,
            proposed_by text NOT NULL,
            proposed_at timestamptz NOT NULL DEFAULT now(),
            status text NOT NULL DEFAULT 'pending',
            decided_by text,
            decided_at timestamptz
        )""",
        "CREATE INDEX rule_proposals_rule ON rule_proposals (rule_id, id)",
        "ALTER TABLE alerts ADD COLUMN suspect boolean NOT NULL DEFAULT false",
    ]


def _snapshot_alerts(timescale: bool) -> list[str]:
    return ["ALTER TABLE state_snapshots ADD COLUMN alerts jsonb NOT NULL DEFAULT '[]'"]


def _effective_dates(timescale: bool) -> list[str]:
    return ["ALTER TABLE rule_proposals ADD COLUMN effective_from timestamptz"]


def _disposal_loop(timescale: bool) -> list[str]:
    return [
        "ALTER TABLE alerts ADD COLUMN raised_at timestamptz",
        "ALTER TABLE alerts ADD COLUMN tier smallint NOT NULL DEFAULT 0",
        "ALTER TABLE alerts ADD COLUMN assignee text",
        "ALTER TABLE alerts ADD COLUMN reviewed_at timestamptz",
        "ALTER TABLE alerts ADD COLUMN reviewed_by text",
    ]


def _notifications(timescale: bool) -> list[str]:
    return [
        """CREATE TABLE notifications (
            id bigserial PRIMARY KEY,
            alert_id text NOT NULL,
            event text NOT NULL,
            channel text,
            url text,
            status text NOT NULL,
            attempts integer NOT NULL,
            error text,
            reason text,
            at timestamptz NOT NULL
        )""",
        "CREATE INDEX notifications_alert ON notifications (alert_id, id)",
    ]


def _noise_store(timescale: bool) -> list[str]:
    return [
        """CREATE TABLE silences (
            id text PRIMARY KEY,
            spec jsonb NOT NULL,
            deleted boolean NOT NULL DEFAULT false
        )""",
        """CREATE TABLE shelves (
            alert_id text PRIMARY KEY,
            spec jsonb NOT NULL
        )""",
    ]


def _shadow_scores(timescale: bool) -> list[str]:
    return [
        """CREATE TABLE anomaly_scores (
            rule text NOT NULL,
            sensor text NOT NULL,
            ts timestamptz NOT NULL,
            score real NOT NULL,
            detector text NOT NULL,
            expected double precision,
            value double precision NOT NULL,
            would_alert smallint NOT NULL DEFAULT 0,
            PRIMARY KEY (rule, sensor, ts)
        )""",
        "CREATE INDEX anomaly_scores_rule_ts ON anomaly_scores (rule, ts DESC)",
    ]


_AGG = "min(value) AS min, max(value) AS max, avg(value) AS mean, last(value, ts) AS last"
_ROLLUP_COLUMNS = """sensor_key integer NOT NULL,
            bucket timestamptz NOT NULL,
            count bigint NOT NULL,
            sum double precision NOT NULL,
            min double precision NOT NULL,
            max double precision NOT NULL,
            last_ts timestamptz NOT NULL,
            last double precision NOT NULL,
            PRIMARY KEY (sensor_key, bucket)"""


def _rollups(timescale: bool) -> list[str]:
    """1 min and 1 h rollups (min, max, mean, last, count) under the same names on both
    paths: continuous aggregates on TimescaleDB, tables kept by the writer otherwise."""
    if not timescale:
        return [
            f"CREATE TABLE readings_1m_t ({_ROLLUP_COLUMNS})",
            f"CREATE TABLE readings_1h_t ({_ROLLUP_COLUMNS})",
            *(
                f"""CREATE VIEW readings_{b} AS SELECT sensor_key, bucket, min, max,
                    sum / count AS mean, last, count FROM readings_{b}_t"""
                for b in ("1m", "1h")
            ),
        ]
    return [
        """ALTER TABLE readings SET (timescaledb.compress,
            timescaledb.compress_segmentby = 'sensor_key', timescaledb.compress_orderby = 'ts')""",
        "SELECT add_compression_policy('readings', compress_after => interval '7 days')",
        f"""CREATE MATERIALIZED VIEW readings_1m
            WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
            SELECT sensor_key, time_bucket(interval '1 minute', ts) AS bucket, {_AGG},
                   count(*) AS count
            FROM readings GROUP BY sensor_key, time_bucket(interval '1 minute', ts)
            WITH NO DATA""",
        """SELECT add_continuous_aggregate_policy('readings_1m',
            start_offset => interval '3 hours', end_offset => interval '1 minute',
            schedule_interval => interval '1 minute')""",
        """CREATE MATERIALIZED VIEW readings_1h
            WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
            SELECT sensor_key, time_bucket(interval '1 hour', bucket) AS bucket,
                   min(min) AS min, max(max) AS max, sum(mean * count) / sum(count) AS mean,
                   last(last, bucket) AS last, sum(count) AS count
            FROM readings_1m GROUP BY sensor_key, time_bucket(interval '1 hour', bucket)
            WITH NO DATA""",
        """SELECT add_continuous_aggregate_policy('readings_1h',
            start_offset => interval '3 days', end_offset => interval '1 hour',
            schedule_interval => interval '1 hour')""",
    ]


EVENT_KEY = "alert_id, kind, ts, level, (COALESCE(detail->>'tier', ''))"


def _lifecycle(timescale: bool) -> list[str]:
    """Several SLA tiers passed at once are several events with one (kind, ts, level): the
    tier is part of an event's identity.  Cleared, unacknowledged alerts are looked up at
    start (the waiting list)."""
    return [
        "DROP INDEX IF EXISTS alert_events_once",
        f"CREATE UNIQUE INDEX alert_events_once ON alert_events ({EVENT_KEY})",
        "CREATE INDEX alerts_waiting ON alerts (site) WHERE NOT active AND acked_at IS NULL "
        "AND state NOT IN ('closed', 'reviewed')",
    ]


def _districts(timescale: bool) -> list[str]:
    return ["ALTER TABLE sites ADD COLUMN IF NOT EXISTS district text"]


def _risk_history(timescale: bool) -> list[str]:
    return [
        """CREATE TABLE risk_history (
            id bigserial PRIMARY KEY,
            site text NOT NULL,
            at timestamptz NOT NULL,
            level smallint NOT NULL,
            score real NOT NULL,
            factors jsonb NOT NULL
        )""",
        "CREATE INDEX risk_history_site_at ON risk_history (site, at)",
    ]


def _risk_models(timescale: bool) -> list[str]:
    return [
        """CREATE TABLE risk_models (
            name text PRIMARY KEY,
            spec jsonb NOT NULL,
            version integer NOT NULL DEFAULT 1,
            updated_at timestamptz NOT NULL DEFAULT now(),
            updated_by text NOT NULL
        )""",
        """CREATE TABLE risk_model_changes (
            id bigserial PRIMARY KEY,
            name text NOT NULL,
            changed_at timestamptz NOT NULL DEFAULT now(),
            changed_by text NOT NULL,
            old jsonb,
            new jsonb NOT NULL
        )""",
        """CREATE TABLE risk_model_proposals (
            id bigserial PRIMARY KEY,
            name text NOT NULL,
            spec jsonb NOT NULL,
            proposed_by text NOT NULL,
            proposed_at timestamptz NOT NULL DEFAULT now(),
            status text NOT NULL DEFAULT 'pending',
            decided_by text,
            decided_at timestamptz
        )""",
    ]


def _events_by_time(timescale: bool) -> list[str]:
    return ["CREATE INDEX IF NOT EXISTS alert_events_at ON alert_events (at)"]


def _transitions(timescale: bool) -> list[str]:
    """An alert row counts its condition changes, so a replay after a restart, which goes
    through an alert's older versions again, does not write them over the newer stored one
    (nor make a second active alert of its fingerprint meanwhile)."""
    return ["ALTER TABLE alerts ADD COLUMN IF NOT EXISTS transitions integer NOT NULL DEFAULT 0"]


def _suppression(timescale: bool) -> list[str]:
    """Alerts suppressed by design while their sensor is in fault (alerts.suppression)."""
    return ["ALTER TABLE alerts ADD COLUMN IF NOT EXISTS suppressed boolean NOT NULL DEFAULT false"]


_ORIGIN = "timestamptz '2000-01-01 00:00Z'"
# Plain PostgreSQL, real-time like TimescaleDB's continuous aggregates: the rollup rows before
# the watermark merged with the readings after it, aggregated as they are asked for.
_REAL_TIME = """CREATE OR REPLACE VIEW readings_{b} AS
    SELECT sensor_key, bucket, min(min) AS min, max(max) AS max, sum(sum) / sum(count) AS mean,
           (array_agg(last ORDER BY last_ts DESC))[1] AS last, sum(count)::bigint AS count
    FROM (
        SELECT sensor_key, bucket, count, sum, min, max, last_ts, last FROM readings_{b}_t
        UNION ALL
        SELECT sensor_key, date_bin(interval '{width}', ts, {origin}), count(*), sum(value),
               min(value), max(value), max(ts), (array_agg(value ORDER BY ts DESC))[1]
        FROM readings WHERE ts >= (SELECT upto FROM rollup_watermark) GROUP BY 1, 2
    ) parts GROUP BY sensor_key, bucket"""


def _rollup_watermark(timescale: bool) -> list[str]:
    """Plain PostgreSQL: the rollups are kept behind a watermark (store/rollups.py), out of
    the write of readings; every reading stored so far is in them already.  A BRIN index on
    ``ts`` finds the readings to fold, and the views add the readings after the watermark."""
    if timescale:
        return []
    return [
        """CREATE TABLE rollup_watermark (
            id integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
            upto timestamptz NOT NULL)""",
        f"""INSERT INTO rollup_watermark (upto) SELECT COALESCE(
            date_bin(interval '1 minute', max(ts), {_ORIGIN}) + interval '1 minute',
            timestamptz '1970-01-01 00:00Z') FROM readings""",
        "CREATE INDEX readings_ts_brin ON readings USING brin (ts)",
        *(
            _REAL_TIME.format(b=b, width=width, origin=_ORIGIN)
            for b, width in (("1m", "1 minute"), ("1h", "1 hour"))
        ),
    ]


MIGRATIONS: list[Migration] = [
    Migration(1, "initial schema", _init),
    Migration(2, "idempotent alert history, partition state snapshots", _partition_state),
    Migration(3, "rule proposals (two-person approval), suspect alerts", _governance),
    Migration(4, "open alerts in partition snapshots", _snapshot_alerts),
    Migration(5, "effective-dated rule changes", _effective_dates),
    Migration(6, "disposal loop: SLA tier, assignee, review", _disposal_loop),
    Migration(7, "notification log", _notifications),
    Migration(8, "silences and shelves", _noise_store),
    Migration(9, "scores of anomaly rules in shadow mode", _shadow_scores),
    Migration(10, "1 min and 1 h rollups, compression", _rollups),
    Migration(11, "alert lifecycle: event identity with the tier, waiting list", _lifecycle),
    Migration(12, "the district or park of a site (risk roll-ups)", _districts),
    Migration(13, "the history of site risk", _risk_history),
    Migration(14, "risk models per site kind: versions, audit, proposals", _risk_models),
    Migration(15, "alert events by time (the live stream's replay)", _events_by_time),
    Migration(16, "alerts count their condition changes (no regress in replays)", _transitions),
    Migration(17, "alerts suppressed by design while their sensor is in fault", _suppression),
    Migration(18, "rollups behind a watermark, out of the write of readings", _rollup_watermark),
]


async def migrate(engine: AsyncEngine) -> list[int]:
    """Apply pending migrations; returns the versions applied."""
    applied: list[int] = []
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
        await conn.execute(
            text(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    timescale boolean NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())"""
            )
        )
        done = {r[0] for r in await conn.execute(text("SELECT version FROM schema_migrations"))}
        timescale = await has_timescaledb(conn)
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            log.info("applying migration %s (%s)", migration.version, migration.name)
            for statement in migration.statements(timescale):
                await conn.execute(text(statement))
            await conn.execute(
                text(
                    "INSERT INTO schema_migrations (version, name, timescale) VALUES (:v, :n, :t)"
                ),
                {"v": migration.version, "n": migration.name, "t": timescale},
            )
            applied.append(migration.version)
    return applied


async def uses_timescale(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT bool_or(timescale) FROM schema_migrations"))).first()
    return bool(row and row[0])
