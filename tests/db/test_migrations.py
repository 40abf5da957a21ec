"""Migrations: from empty, twice, and from two processes at once."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg
import pytest

from trendflow.db.migrate import Migration, apply_migrations, load_migrations, migration_status
from trendflow.db.pool import connect
from trendflow.errors import DatabaseError

EXPECTED_TABLES = {
    "users",
    "api_tokens",
    "videos",
    "runs",
    "run_components",
    "artifacts",
    "render_cache",
    "billing_ledger",
    "billing_audit",
    "analysis_profiles",
    "profile_components",
    "profile_model_mapping",
    "component_resource_requirements",
    "component_pricing",
    "schema_migrations",
}


async def _tables(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {r["tablename"] for r in rows}


async def test_migrate_from_empty_creates_every_table(empty_db_url: str) -> None:
    conn = await connect(empty_db_url)
    try:
        assert await _tables(conn) == set()
        applied = await apply_migrations(conn)
        assert [m.version for m in applied] == [m.version for m in load_migrations()]
        assert await _tables(conn) == EXPECTED_TABLES
        states = await migration_status(conn)
        assert all(s.applied_at is not None for s in states)
    finally:
        await conn.close()


async def test_migrate_twice_is_a_noop(empty_db_url: str) -> None:
    conn = await connect(empty_db_url)
    try:
        await apply_migrations(conn)
        before = await conn.fetch("SELECT version, applied_at FROM schema_migrations")
        assert await apply_migrations(conn) == []
        after = await conn.fetch("SELECT version, applied_at FROM schema_migrations")
        assert before == after
    finally:
        await conn.close()


_MIGRATE_SCRIPT = """
import asyncio, sys
from trendflow.db.migrate import apply_migrations
from trendflow.db.pool import connect

async def main(url):
    conn = await connect(url)
    try:
        print(len(await apply_migrations(conn)))
    finally:
        await conn.close()

asyncio.run(main(sys.argv[1]))
"""


async def test_concurrent_migrate_from_two_processes(empty_db_url: str) -> None:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _MIGRATE_SCRIPT,
            empty_db_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    results = [await p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err.decode() for _, err in results]
    counts = sorted(int(out) for out, _ in results)
    # exactly one process applied everything; the other found nothing left to do
    assert counts == [0, len(load_migrations())]
    conn = await connect(empty_db_url)
    try:
        versions = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in versions] == [m.version for m in load_migrations()]
    finally:
        await conn.close()


async def test_edited_migration_is_refused(empty_db_url: str) -> None:
    conn = await connect(empty_db_url)
    try:
        first = load_migrations()[0]
        await apply_migrations(conn, migrations=[first])
        edited = Migration(first.version, first.name, first.sql + "\n-- edited\n")
        with pytest.raises(DatabaseError, match="changed after it was applied"):
            await apply_migrations(conn, migrations=[edited])
    finally:
        await conn.close()


async def test_failed_migration_leaves_nothing_half_applied(empty_db_url: str) -> None:
    conn = await connect(empty_db_url)
    try:
        bad = Migration(1, "bad", "CREATE TABLE half (x int); SELECT * FROM no_such_table;")
        with pytest.raises(DatabaseError, match="0001_bad failed"):
            await apply_migrations(conn, migrations=[bad])
        assert "half" not in await _tables(conn)
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == 0
    finally:
        await conn.close()


def test_migration_files_are_numbered_without_gaps(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0003_c.sql").write_text("SELECT 1;")
    with pytest.raises(DatabaseError, match="without gaps"):
        load_migrations(tmp_path)
