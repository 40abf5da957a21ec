"""``GET /api/runs/{id}/report`` and ``DELETE /api/videos/{platform}/{id}`` (right to deletion).

Deletion of a video shared by several users: a user deletes **their own** runs of it (manifests,
NPZ, frames, render cache, index rows) and their own uploads of it; other users' runs stay. A
run of the caller whose results another user's run reuses (the cache) keeps its manifest and NPZ
for that user but loses its owner (``user_id`` in the row and in ``manifest.json``, callback URL
and idempotency key); its frames and render cache go. When no other user's run is left, the
video row and everything under its store prefix go too. An admin deletes the video for
everyone. Ledger rows stay (financial records) with their run reference cleared. Queued or
running runs must be cancelled first (``409 conflict``). The rules: :mod:`trendflow.api.deletion`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from trendflow.api import deletion
from trendflow.api import report as report_mod
from trendflow.api import runs as service
from trendflow.api.deps import Conn, CurrentUser, StoreDep
from trendflow.api.schemas import ErrorOut
from trendflow.contracts.manifest import Manifest
from trendflow.contracts.npz import decode_npz
from trendflow.contracts.schemas import load_component_schema
from trendflow.db.repositories import runs as runs_repo
from trendflow.errors import ArtifactNotFound, RunNotReady
from trendflow.storage.keys import artifact_key, manifest_key

router = APIRouter(tags=["runs"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 404, 409)
}


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
    done = await deletion.delete_video(conn, store, user=user, platform_id=platform_id,
                                       video_id=video_id)
    return DeletionOut(platform_id=platform_id, video_id=video_id, runs_deleted=done.runs_deleted,
                       runs_kept_for_others=done.runs_kept_for_others,
                       uploads_deleted=done.uploads_deleted, objects_deleted=done.objects_deleted,
                       video_row_deleted=done.video_row_deleted)
