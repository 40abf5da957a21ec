"""Videos: one row per (platform_id, video_id); deleting one removes its runs and index rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from trendflow.db.repositories._base import columns, domain_errors, row_to
from trendflow.errors import NotFound

if TYPE_CHECKING:
    from trendflow.contracts.manifest import VideoSection


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
    """Insert the video, or fill in what is known now (None never overwrites a known value).

    A row that already holds these values is left as it is (``updated_at`` included): only a
    change moves ``updated_at``. ``created_at`` applies to a new row only.
    """
    with domain_errors(f"upsert video {platform_id}/{video_id}"):
        row = await conn.fetchrow(
            f"""
            INSERT INTO videos AS v (platform_id, video_id, title, description, duration_s, fps,
                                     width, height, has_audio, source, preprocessing, metadata,
                                     created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, COALESCE($10, '{{}}'::jsonb),
                    COALESCE($11, '[]'::jsonb), COALESCE($12, '{{}}'::jsonb),
                    COALESCE($13, now()))
            ON CONFLICT (platform_id, video_id) DO UPDATE SET
                title = COALESCE(EXCLUDED.title, v.title),
                description = COALESCE(EXCLUDED.description, v.description),
                duration_s = COALESCE(EXCLUDED.duration_s, v.duration_s),
                fps = COALESCE(EXCLUDED.fps, v.fps),
                width = COALESCE(EXCLUDED.width, v.width),
                height = COALESCE(EXCLUDED.height, v.height),
                has_audio = COALESCE(EXCLUDED.has_audio, v.has_audio),
                source = CASE WHEN $10 IS NULL THEN v.source ELSE EXCLUDED.source END,
                preprocessing = CASE WHEN $11 IS NULL THEN v.preprocessing
                                     ELSE EXCLUDED.preprocessing END,
                metadata = CASE WHEN $12 IS NULL THEN v.metadata ELSE EXCLUDED.metadata END,
                updated_at = now()
            WHERE (v.title, v.description, v.duration_s, v.fps, v.width, v.height, v.has_audio,
                   v.source, v.preprocessing, v.metadata)
                  IS DISTINCT FROM
                  (COALESCE(EXCLUDED.title, v.title),
                   COALESCE(EXCLUDED.description, v.description),
                   COALESCE(EXCLUDED.duration_s, v.duration_s), COALESCE(EXCLUDED.fps, v.fps),
                   COALESCE(EXCLUDED.width, v.width), COALESCE(EXCLUDED.height, v.height),
                   COALESCE(EXCLUDED.has_audio, v.has_audio),
                   CASE WHEN $10 IS NULL THEN v.source ELSE EXCLUDED.source END,
                   CASE WHEN $11 IS NULL THEN v.preprocessing ELSE EXCLUDED.preprocessing END,
                   CASE WHEN $12 IS NULL THEN v.metadata ELSE EXCLUDED.metadata END)
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
    if row is None:  # nothing to change
        return await get_video(conn, platform_id=platform_id, video_id=video_id)
    return row_to(Video, row)


def probe_columns(video: VideoSection) -> dict[str, Any]:
    """The ``videos`` columns a manifest's probed ``video`` section fills, as keyword
    arguments of :func:`upsert_video`: the one mapping the running pipeline (once the
    Segmenter has probed the file) and an index rebuild both write."""
    return {
        "duration_s": video.duration_s,
        "fps": video.fps,
        "width": video.width,
        "height": video.height,
        "has_audio": video.has_audio,
        "preprocessing": [p.model_dump(mode="json") for p in video.preprocessing],
    }


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
