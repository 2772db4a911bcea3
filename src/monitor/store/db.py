"""Database engine: SQLAlchemy 2 (async) over psycopg 3."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


def sqlalchemy_url(url: str) -> str:
    """Accept postgresql:// (libpq style) and use the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


@asynccontextmanager
async def open_engine(
    url: str, *, pool_size: int = 5, single: bool = False
) -> AsyncIterator[AsyncEngine]:
    """``single``: one connection and no prepared statements (PGlite over the wire)."""
    engine = create_async_engine(
        sqlalchemy_url(url),
        pool_size=1 if single else pool_size,
        max_overflow=0 if single else 5,
        pool_pre_ping=True,
        connect_args={"prepare_threshold": None} if single else {},
    )
    try:
        yield engine
    finally:
        await engine.dispose()


async def raw_connection(conn: AsyncConnection) -> psycopg.AsyncConnection[object]:
    """The psycopg connection under a SQLAlchemy connection (for COPY)."""
    fairy = await conn.get_raw_connection()
    driver = fairy.driver_connection
    assert isinstance(driver, psycopg.AsyncConnection)
    return driver


async def ensure_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist yet."""
    target = make_url(url)
    name = target.database
    admin = libpq_url(target.set(database="postgres").render_as_string(hide_password=False))
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        row = await (
            await conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        ).fetchone()
        if row is None:
            await conn.execute(f'CREATE DATABASE "{name}"')


async def has_timescaledb(conn: AsyncConnection) -> bool:
    result = await conn.execute(
        text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    )
    return result.first() is not None
