"""Forward-only SQL migrations.

Migrations are the numbered files ``trendflow/db/migrations/NNNN_<name>.sql``, applied in order,
each in its own transaction, and recorded in ``schema_migrations`` with a checksum. A landed file
is never edited: a changed checksum, or a version in the database that this code does not know,
stops the service with a clear error instead of running on a schema it does not understand.

Applying is safe to repeat (already-applied files are skipped) and safe from several processes at
once: every migrator holds a PostgreSQL advisory lock while it looks and applies.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

from trendflow.errors import DatabaseError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Arbitrary but fixed: every TrendFlow migrator of every process takes this same lock.
_ADVISORY_LOCK_KEY = 0x7472_656E_6466_6C6F  # "trendflo"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class MigrationState:
    migration: Migration
    applied_at: datetime | None


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file in ``directory``, by version; versions must be 1, 2, 3, …"""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise DatabaseError(
                f"migration file {path} is not named NNNN_<lower_snake_name>.sql", path=str(path)
            )
        found.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise DatabaseError(
                f"migrations in {directory} must be numbered 0001, 0002, … without gaps or "
                f"duplicates; found {migration.version:04d} where {expected:04d} was expected",
                directory=str(directory),
            )
    return found


_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


async def _applied(conn: asyncpg.Connection) -> dict[int, asyncpg.Record]:
    rows = await conn.fetch("SELECT version, name, checksum, applied_at FROM schema_migrations")
    return {row["version"]: row for row in rows}


def _check_known(migrations: list[Migration], applied: dict[int, asyncpg.Record]) -> None:
    by_version = {m.version: m for m in migrations}
    for version, row in sorted(applied.items()):
        known = by_version.get(version)
        if known is None:
            raise DatabaseError(
                f"the database has migration {version:04d}_{row['name']} which this version of "
                "TrendFlow does not know; upgrade TrendFlow before using this database",
                version=version,
            )
        if known.checksum != row["checksum"]:
            raise DatabaseError(
                f"migration {version:04d}_{known.name} was changed after it was applied "
                "(checksum differs); landed migrations are never edited — add a new one",
                version=version,
            )


async def apply_migrations(
    conn: asyncpg.Connection, *, migrations: list[Migration] | None = None
) -> list[Migration]:
    """Apply every pending migration; returns those applied now (empty when up to date)."""
    migrations = load_migrations() if migrations is None else migrations
    await conn.execute("SELECT pg_advisory_lock($1)", _ADVISORY_LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        applied = await _applied(conn)
        _check_known(migrations, applied)
        done: list[Migration] = []
        for migration in migrations:
            if migration.version in applied:
                continue
            try:
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) "
                        "VALUES ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        migration.checksum,
                    )
            except asyncpg.PostgresError as exc:
                raise DatabaseError(
                    f"migration {migration.version:04d}_{migration.name} failed: {exc}; "
                    "nothing of it was applied",
                    version=migration.version,
                ) from exc
            done.append(migration)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _ADVISORY_LOCK_KEY)


async def migration_status(conn: asyncpg.Connection) -> list[MigrationState]:
    """Every known migration with the time it was applied (None: pending)."""
    migrations = load_migrations()
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    applied = await _applied(conn) if exists else {}
    _check_known(migrations, applied)
    return [
        MigrationState(m, applied[m.version]["applied_at"] if m.version in applied else None)
        for m in migrations
    ]
