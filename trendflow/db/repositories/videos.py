"""Videos: one row per (platform_id, video_id); deleting one removes its runs and index rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from trendflow.db.repositories._base import columns, domain_errors, row_to
from trendflow.errors import NotFound


@dataclass(frozen=True, slots=True)
class Video:
    platform_id: str
    video_id: str
    title: str | None
    description: str | None
    duration_s: float | None
    fps: float | None
    width: int | None
    height: int | None
    has_audio: bool | None
    source: dict[str, Any]
    preprocessing: list[Any]
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


_VIDEO = columns(Video)


async def upsert_video(
    conn: asyncpg.Connection,
    *,
    platform_id: str,
    video_id: str,
    title: str | None = None,
    description: str | None = None,
    duration_s: float | None = None,
    fps: float | None = None,
    width: int | None = None,
    height: int | None = None,
    has_audio: bool | None = None,
    source: dict[str, Any] | None = None,
    preprocessing: list[Any] | None = None,
    metadata: dict[str, Any] | None = None,
    created_at: datetime | None = None,
) -> Video:
    """Insert the video, or fill in what is known now (None never overwrites a known value)."""
    with domain_errors(f"upsert video {platform_id}/{video_id}"):
        row = await conn.fetchrow(
            f"""
            INSERT INTO videos (platform_id, video_id, title, description, duration_s, fps,
                                width, height, has_audio, source, preprocessing, metadata,
                                created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, COALESCE($10, '{{}}'::jsonb),
                    COALESCE($11, '[]'::jsonb), COALESCE($12, '{{}}'::jsonb),
                    COALESCE($13, now()))
            ON CONFLICT (platform_id, video_id) DO UPDATE SET
                title = COALESCE(EXCLUDED.title, videos.title),
                description = COALESCE(EXCLUDED.description, videos.description),
                duration_s = COALESCE(EXCLUDED.duration_s, videos.duration_s),
                fps = COALESCE(EXCLUDED.fps, videos.fps),
                width = COALESCE(EXCLUDED.width, videos.width),
                height = COALESCE(EXCLUDED.height, videos.height),
                has_audio = COALESCE(EXCLUDED.has_audio, videos.has_audio),
                source = CASE WHEN $10 IS NULL THEN videos.source ELSE EXCLUDED.source END,
                preprocessing = CASE WHEN $11 IS NULL THEN videos.preprocessing
                                     ELSE EXCLUDED.preprocessing END,
                metadata = CASE WHEN $12 IS NULL THEN videos.metadata ELSE EXCLUDED.metadata END,
                updated_at = now()
            RETURNING {_VIDEO}
            """,
            platform_id,
            video_id,
            title,
            description,
            duration_s,
            fps,
            width,
            height,
            has_audio,
            source,
            preprocessing,
            metadata,
            created_at,
        )
    return row_to(Video, row)


async def get_video(conn: asyncpg.Connection, *, platform_id: str, video_id: str) -> Video:
    row = await conn.fetchrow(
        f"SELECT {_VIDEO} FROM videos WHERE platform_id = $1 AND video_id = $2",
        platform_id,
        video_id,
    )
    if row is None:
        raise NotFound(
            f"video {platform_id}/{video_id} is not in the index",
            platform_id=platform_id,
            video_id=video_id,
        )
    return row_to(Video, row)


async def video_exists(conn: asyncpg.Connection, *, platform_id: str, video_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT true FROM videos WHERE platform_id = $1 AND video_id = $2",
            platform_id,
            video_id,
        )
    )


async def delete_video(conn: asyncpg.Connection, *, platform_id: str, video_id: str) -> bool:
    """Delete the video and, by cascade, its runs, components, artifacts and render cache."""
    status = await conn.execute(
        "DELETE FROM videos WHERE platform_id = $1 AND video_id = $2", platform_id, video_id
    )
    return status.endswith(" 1")


async def lock_video_files(conn: asyncpg.Connection, *, platform_id: str, video_id: str) -> None:
    """Hold, until the current transaction ends, the lock on the video's stored files: an
    upload writing its record and content, and a deletion deciding whether a shared upload
    file is still referenced, take it (so a deletion never removes a file an upload of the
    same bytes is just being recorded for)."""
    with domain_errors(f"lock the files of video {platform_id}/{video_id}"):
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                           f"video-files:{platform_id}/{video_id}")
