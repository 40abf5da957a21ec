"""Connections to the index database.

:func:`open_database` resolves where the database is — ``settings.database.url`` (also
``TRENDFLOW_DATABASE_URL``) or, with no URL, the embedded server in ``<data_dir>/postgres`` — and
opens an asyncpg pool whose connections decode ``json``/``jsonb`` to Python values.
:func:`connect_and_migrate` is what a service calls on start: the same, with pending migrations
applied first. Close the :class:`Database` when done; that also releases the embedded server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from trendflow.db.embedded import EMBEDDED_DATABASE, EmbeddedServer
from trendflow.db.migrate import apply_migrations
from trendflow.errors import DatabaseError
from trendflow.settings import Settings, get_settings


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (safe for logs and errors)."""
    return re.sub(r"(://[^:/@?]*:)[^@/?]+@", r"\1***@", url)


async def init_connection(conn: asyncpg.Connection) -> None:
    """Per-connection setup: JSON columns in and out as Python values."""
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, schema="pg_catalog", encoder=json.dumps, decoder=json.loads
        )


async def connect(url: str) -> asyncpg.Connection:
    """One connection (CLI commands, migrations), set up like the pool's."""
    try:
        conn = await asyncpg.connect(url)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise DatabaseError(
            f"cannot connect to PostgreSQL at {redact_url(url)}: {exc}", url=redact_url(url)
        ) from exc
    await init_connection(conn)
    return conn


async def ensure_database(admin_url: str, name: str) -> None:
    """Create database ``name`` through ``admin_url`` unless it exists (race-safe)."""
    conn = await connect(admin_url)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return
        # another process may create it between our check and our CREATE
        with contextlib.suppress(asyncpg.DuplicateDatabaseError):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@dataclass
class Database:
    """An open pool on the index database (and the embedded server it runs on, if any)."""

    pool: asyncpg.Pool
    url: str
    embedded: EmbeddedServer | None = None

    def acquire(self) -> asyncpg.pool.PoolAcquireContext:
        """``async with db.acquire() as conn:`` — a pooled connection."""
        return self.pool.acquire()

    async def close(self) -> None:
        """Close the pool, then release the embedded server (stops it if we were last)."""
        try:
            await self.pool.close()
        finally:
            if self.embedded is not None:
                await asyncio.to_thread(self.embedded.release)
                self.embedded = None

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def resolve_url(settings: Settings) -> tuple[str, EmbeddedServer | None]:
    """The database URL to use and, in embedded mode, the server handle that keeps it up.

    The caller owns the handle and must ``release()`` it.
    """
    if settings.database.url is not None:
        return settings.database.url.get_secret_value(), None
    server = await asyncio.to_thread(EmbeddedServer.acquire, settings.data_dir / "postgres")
    try:
        await ensure_database(server.uri("postgres"), EMBEDDED_DATABASE)
    except BaseException:
        await asyncio.to_thread(server.release)
        raise
    return server.uri(EMBEDDED_DATABASE), server


async def open_database(settings: Settings | None = None, *, migrate: bool = False) -> Database:
    """Open the pool described by ``settings`` (default: :func:`get_settings`)."""
    settings = settings or get_settings()
    url, embedded = await resolve_url(settings)
    try:
        if migrate:
            conn = await connect(url)
            try:
                await apply_migrations(conn)
            finally:
                await conn.close()
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=settings.database.pool_min_size,
                max_size=settings.database.pool_max_size,
                command_timeout=settings.database.command_timeout_s,
                init=init_connection,
            )
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            raise DatabaseError(
                f"cannot open a connection pool to {redact_url(url)}: {exc}",
                url=redact_url(url),
            ) from exc
    except BaseException:
        if embedded is not None:
            await asyncio.to_thread(embedded.release)
        raise
    return Database(pool=pool, url=url, embedded=embedded)


async def connect_and_migrate(settings: Settings | None = None) -> Database:
    """Open the database and bring its schema up to date: what every service does on start."""
    return await open_database(settings, migrate=True)


@asynccontextmanager
async def database(
    settings: Settings | None = None, *, migrate: bool = True
) -> AsyncIterator[Database]:
    """``async with database() as db:`` — open (and migrate), then close."""
    db = await open_database(settings, migrate=migrate)
    try:
        yield db
    finally:
        await db.close()
