"""Small builders for index rows used by several database tests."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

import asyncpg

from trendflow.db.repositories import runs as runs_repo
from trendflow.db.repositories import videos as videos_repo
from trendflow.db.repositories.runs import Run


def fake_hash(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


async def make_run(
    conn: asyncpg.Connection,
    *,
    video_id: str = "dQw4w9WgXcQ",
    user_id: uuid.UUID | None = None,
    created_at: datetime | None = None,
    idempotency_key: str | None = None,
    status: runs_repo.RunStatus = "queued",
) -> Run:
    await videos_repo.upsert_video(conn, platform_id="youtube", video_id=video_id)
    run, _ = await runs_repo.create_run(
        conn,
        run_id=uuid.uuid4(),
        platform_id="youtube",
        video_id=video_id,
        user_id=user_id,
        profile_id="fast",
        config_hash=fake_hash("fast"),
        sampling_policy_version="tl12-h320-v1",
        dataprocessor_version="0.1.0",
        model_signature=fake_hash("models"),
        created_at=created_at,
        idempotency_key=idempotency_key,
        status=status,
    )
    return run
