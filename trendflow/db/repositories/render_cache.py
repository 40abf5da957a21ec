"""The ``render_cache`` table: one written analysis per (video, run, render profile, model,
prompt hash, locale).

The sentence range asked is part of what the text is, so the stored ``render_profile_id`` is
``<render_profile_id>@<min>-<max>``. ``text`` holds the render record as JSON (sections with
their sentences, recommendations, token usage, attempts, seconds); :class:`CachedRender` is it
decoded. Rows go with their run (``ON DELETE CASCADE``) and with deletion by video.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from trendflow.db.repositories._base import domain_errors


@dataclass(frozen=True, slots=True)
class RenderKey:
    platform_id: str
    video_id: str
    run_id: uuid.UUID
    render_profile_id: str
    llm_model: str
    prompt_hash: str
    locale: str
    sentences_min: int
    sentences_max: int

    @property
    def stored_profile(self) -> str:
        return f"{self.render_profile_id}@{self.sentences_min}-{self.sentences_max}"


@dataclass(frozen=True, slots=True)
class CachedRender:
    engine: str
    prompt_version: str
    record: dict[str, Any]


_KEY = ("video_id = $1 AND run_id = $2 AND render_profile_id = $3 AND llm_model = $4 "
        "AND prompt_hash = $5 AND locale = $6")


def _args(key: RenderKey) -> tuple[Any, ...]:
    return (key.video_id, key.run_id, key.stored_profile, key.llm_model, key.prompt_hash,
            key.locale)


async def get_render(conn: asyncpg.Connection, *, key: RenderKey) -> CachedRender | None:
    """The cached render of ``key``, or None."""
    row = await conn.fetchrow(
        f"SELECT engine, prompt_version, text FROM render_cache WHERE {_KEY}", *_args(key))
    if row is None:
        return None
    return CachedRender(row["engine"], row["prompt_version"], json.loads(row["text"]))


async def put_render(conn: asyncpg.Connection, *, key: RenderKey, engine: str,
                     prompt_version: str, record: dict[str, Any]) -> None:
    """Store (or replace) the render of ``key``."""
    with domain_errors("store a render"):
        await conn.execute(
            "INSERT INTO render_cache (video_id, run_id, render_profile_id, llm_model, "
            "prompt_hash, locale, platform_id, engine, prompt_version, text) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
            "ON CONFLICT (video_id, run_id, render_profile_id, llm_model, prompt_hash, locale) "
            "DO UPDATE SET text = EXCLUDED.text, created_at = now()",
            *_args(key), key.platform_id, engine, prompt_version,
            json.dumps(record, ensure_ascii=False))


async def count_renders(conn: asyncpg.Connection, *, run_id: uuid.UUID) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM render_cache WHERE run_id = $1", run_id))


__all__ = ["CachedRender", "RenderKey", "count_renders", "get_render", "put_render"]
