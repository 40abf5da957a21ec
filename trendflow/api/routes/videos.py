"""``GET /api/runs/{id}/report`` and ``DELETE /api/videos/{platform}/{id}`` (right to deletion).

Deletion of a video shared by several users: a user deletes **their own** runs of it (manifests,
NPZ, frames, render cache, index rows) and their own uploads of it; other users' runs stay. A
run of the caller whose results another user's run reuses (the cache) keeps its files for that
user but loses its owner (``user_id``, callback URL and idempotency key are cleared): the
caller's link to the video is gone, the other user's results still read. When no other user's
run is left, the video row and everything under its store prefix go too. An admin deletes the
video for everyone. Ledger rows stay (financial records) with their run reference cleared.
Queued or running runs must be cancelled first (``409 conflict``).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from trendflow.api import report as report_mod
from trendflow.api import runs as service
from trendflow.api.deps import Conn, CurrentUser, StoreDep
from trendflow.api.schemas import ErrorOut
from trendflow.contracts.manifest import Manifest
from trendflow.contracts.npz import decode_npz
from trendflow.contracts.schemas import load_component_schema
from trendflow.db.repositories import runs as runs_repo
from trendflow.db.repositories import videos as videos_repo
from trendflow.errors import ArtifactNotFound, Conflict, NotFound, RunNotReady
from trendflow.storage.base import ResultStore
from trendflow.storage.keys import (
    artifact_key,
    frames_prefix,
    manifest_key,
    run_prefix,
    upload_prefix,
    validate_platform_id,
    validate_video_id,
    video_prefix,
)

router = APIRouter(tags=["runs"])
_ERRORS = {400: {"model": ErrorOut}, 401: {"model": ErrorOut}, 404: {"model": ErrorOut},
           409: {"model": ErrorOut}}


class ReportOut(BaseModel):
    run_id: uuid.UUID
    engine: str = Field(description="'template': deterministic, data-driven text (no LLM)")
    template_version: str
    sentences: list[str]
    text: str
    findings: list[dict[str, Any]] = Field(
        description="every scalar NPZ key per component: component, key, value, unit"
    )


@router.get("/api/runs/{run_id}/report", response_model=ReportOut, responses=_ERRORS)
async def run_report(run_id: uuid.UUID, user: CurrentUser, conn: Conn,
                     store: StoreDep) -> ReportOut:
    """The run's text report, made from its NPZ files by the deterministic template."""
    run = await runs_repo.get_run(conn, run_id=run_id, user_id=user.user_id)
    if run.status != "ok":
        raise RunNotReady(f"run {run_id} is {run.status}; a report needs a successful run",
                          status=run.status)
    source = service.artifact_run_id(run)
    try:
        raw = await store.get_bytes(manifest_key(run.platform_id, run.video_id, source))
    except ArtifactNotFound:
        raise RunNotReady(f"run {run_id} has no manifest in the store", status=run.status) from None
    manifest = Manifest.from_json_bytes(raw)
    parts: dict[str, tuple[str, str | None, dict[str, np.ndarray]]] = {}
    found: list[dict[str, Any]] = []
    for name, rec in sorted(manifest.components.items()):
        if rec.status not in ("ok", "empty") or not rec.artifacts:
            continue
        data = await store.get_bytes(artifact_key(run.platform_id, run.video_id, source, name))
        art = decode_npz(data, where=f"{name}.npz")
        units = {k: s.unit for k, s in load_component_schema(name).specs.items()}
        parts[name] = (rec.status, rec.empty_reason, art.arrays)
        found += [f.as_dict() for f in report_mod.findings(name, art.arrays, units)]
    sentences = report_mod.render(parts)
    return ReportOut(run_id=run.run_id, engine=report_mod.ENGINE,
                     template_version=report_mod.TEMPLATE_VERSION, sentences=sentences,
                     text=" ".join(sentences), findings=found)


class DeletionOut(BaseModel):
    platform_id: str
    video_id: str
    runs_deleted: int
    runs_kept_for_others: int = Field(
        description="your runs whose results other users' runs reuse: files kept, owner removed"
    )
    uploads_deleted: int
    objects_deleted: int
    video_row_deleted: bool


PlatformId = Annotated[str, Path(max_length=32)]
VideoId = Annotated[str, Path(max_length=64)]


@router.delete("/api/videos/{platform_id}/{video_id}", response_model=DeletionOut,
               responses=_ERRORS)
async def delete_video(platform_id: PlatformId, video_id: VideoId, user: CurrentUser,
                       conn: Conn, store: StoreDep) -> DeletionOut:
    """Right to deletion: your runs, files and uploads of this video (an admin: everyone's)."""
    validate_platform_id(platform_id)
    validate_video_id(video_id)
    admin = user.role == "admin"
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT run_id, user_id, status FROM runs WHERE platform_id = $1 AND video_id = $2 "
            "FOR UPDATE", platform_id, video_id)
        mine = [r for r in rows if admin or r["user_id"] == user.user_id]
        uploads = await _uploads_of(store, video_id, None if admin else user.user_id)
        video_exists = await conn.fetchval(
            "SELECT true FROM videos WHERE platform_id = $1 AND video_id = $2",
            platform_id, video_id)
        if not mine and not uploads and not (admin and video_exists):
            raise NotFound(f"you have no runs or uploads of video {platform_id}/{video_id}",
                           platform_id=platform_id, video_id=video_id)
        active = [str(r["run_id"]) for r in mine if r["status"] not in runs_repo.TERMINAL_STATUSES]
        if active:
            raise Conflict(f"cancel the unfinished runs of this video first: {', '.join(active)}",
                           run_ids=active)
        mine_ids = [r["run_id"] for r in mine]
        kept: list[uuid.UUID] = []
        if not admin and mine_ids:
            kept = [r["reused_from_run_id"] for r in await conn.fetch(
                "SELECT DISTINCT reused_from_run_id FROM runs WHERE reused_from_run_id = ANY($1) "
                "AND NOT (run_id = ANY($1))", mine_ids)]
        doomed = [i for i in mine_ids if i not in kept]
        others_left = len(rows) > len(mine) or bool(kept)
        objects = 0
        for run_id in doomed:
            objects += await store.delete_prefix(run_prefix(platform_id, video_id, run_id))
            objects += await store.delete_prefix(frames_prefix(run_id))
        for upload_id in uploads:
            objects += await store.delete_prefix(upload_prefix(upload_id))
        row_deleted = False
        if not others_left and video_exists:
            objects += await store.delete_prefix(video_prefix(platform_id, video_id))
            row_deleted = await videos_repo.delete_video(conn, platform_id=platform_id,
                                                         video_id=video_id)
        else:
            await conn.execute("DELETE FROM runs WHERE run_id = ANY($1)", doomed)
            await conn.execute(
                "UPDATE runs SET user_id = NULL, callback_url = NULL, idempotency_key = NULL "
                "WHERE run_id = ANY($1)", kept)
    return DeletionOut(platform_id=platform_id, video_id=video_id, runs_deleted=len(doomed),
                       runs_kept_for_others=len(kept), uploads_deleted=len(uploads),
                       objects_deleted=objects, video_row_deleted=row_deleted)


async def _uploads_of(store: ResultStore, video_id: str, user_id: uuid.UUID | None) -> list[str]:
    """Upload ids of this video (of ``user_id`` only, unless None)."""
    if not video_id.startswith("up-"):
        return []
    from trendflow.api.uploads import RECORD_NAME

    keys = [k for k in await store.list("uploads/") if k.endswith("/" + RECORD_NAME)]
    records = await asyncio.gather(*(store.get_bytes(k) for k in keys))
    out = []
    for key, raw in zip(keys, records, strict=True):
        rec = json.loads(raw)
        if rec["upload"]["video_id"] != video_id:
            continue
        if user_id is None or rec.get("user_id") == str(user_id):
            out.append(key.split("/")[1])
    return out
