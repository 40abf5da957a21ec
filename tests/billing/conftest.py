"""Billing tests: a migrated, seeded database per test and small builders for paid runs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from trendflow.billing.admission import BilledRun, create_billed_run
from trendflow.billing.ledger import top_up
from trendflow.billing.pricing import VideoParams
from trendflow.db.pool import connect
from trendflow.db.repositories import components as rc_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.db.repositories import users as users_repo
from trendflow.db.seed.seed import apply_seed
from trendflow.settings import Settings

VIDEO = VideoParams(duration_s=60.0, width=1920, height=1080)


@pytest.fixture
async def seeded_url(db_url: str) -> str:
    conn = await connect(db_url)
    try:
        await apply_seed(conn)
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


def video_id(n: int) -> str:
    return f"vid{n:08d}"


async def new_user(
    conn: asyncpg.Connection, *, credits: Decimal = Decimal(0), subscription: str = "free"
) -> uuid.UUID:
    user = await users_repo.create_user(
        conn, email=f"{uuid.uuid4().hex[:12]}@example.com", subscription=subscription  # type: ignore[arg-type]
    )
    if credits > 0:
        await top_up(conn, user_id=user.user_id, amount=credits, reason="test credits",
                     actor="admin@example.com")
    return user.user_id


async def paid_run(
    conn: asyncpg.Connection,
    user_id: uuid.UUID,
    n: int = 0,
    *,
    profile_id: str = "fast",
    settings: Settings | None = None,
    video: VideoParams = VIDEO,
    reuse: bool = False,
    idempotency_key: str | None = None,
) -> BilledRun:
    vid = video_id(n)
    return await create_billed_run(
        conn,
        user_id=user_id,
        profile_id=profile_id,
        platform_id="youtube",
        video_id=vid,
        source={"kind": "youtube", "url": f"https://www.youtube.com/watch?v={vid}"},
        video=video,
        settings=settings or Settings(),
        reuse=reuse,
        idempotency_key=idempotency_key,
    )


async def finish(
    conn: asyncpg.Connection,
    run_id: uuid.UUID,
    *,
    status: str,
    components: dict[str, str],
    finished_before_end: bool = True,
) -> None:
    """Move a run to ``status`` with each component ending as given (as the scheduler does)."""
    await runs_repo.set_run_status(conn, run_id=run_id, status="running")
    now = datetime.now().astimezone()
    done_at = now - timedelta(seconds=1) if finished_before_end else now + timedelta(hours=1)
    for name, comp_status in components.items():
        await rc_repo.upsert_run_component(
            conn,
            run_id=run_id,
            component_name=name,
            status=comp_status,  # type: ignore[arg-type]
            finished_at=None if comp_status in ("pending", "running") else done_at,
            error={"code": "component_failed", "message": "x"} if comp_status == "error" else None,
            empty_reason="no_faces_in_video" if comp_status == "empty" else None,
            duration_ms=None if comp_status in ("pending", "running") else 1000,
        )
    await runs_repo.set_run_status(conn, run_id=run_id, status=status)  # type: ignore[arg-type]


FAST = ("audio_features", "color_stats", "loudness", "metadata_features", "motion",
        "shot_detection")
