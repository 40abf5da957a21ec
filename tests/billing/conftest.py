"""Billing tests: a migrated, seeded database per test (real PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from trendflow.db.pool import connect

from .helpers import prepare


@pytest.fixture
async def seeded_url(db_url: str) -> str:
    conn = await connect(db_url)
    try:
        await prepare(conn)
    finally:
        await conn.close()
    return db_url


@pytest.fixture
async def sconn(seeded_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection on a seeded database (statements commit)."""
    conn = await connect(seeded_url)
    try:
        yield conn
    finally:
        await conn.close()
