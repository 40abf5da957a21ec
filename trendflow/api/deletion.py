"""Right to deletion of one video (``DELETE /api/videos/{platform_id}/{video_id}``).

Who keeps what is decided by :func:`plan_deletion`, a pure function of the video's runs:

- a run is **needed** while a run of another user (or an unfinished run nobody owns) exists, or
  reuses it through the cache (``reused_from_run_id``); everything else of the video goes;
- the caller's needed runs are **unlinked**: their rows lose ``user_id``, callback URL and
  Idempotency-Key, their ``manifest.json`` is rewritten without ``run.user_id`` (so rebuilding
  the index from the store cannot give them back to the caller), their frames and render-cache
  rows go; the manifest and NPZ files stay for the user who reads them;
- finished runs nobody owns that nothing needed reuses (left by an earlier deletion or a
  removed account) go with the caller's, so the last user to delete leaves nothing behind;
- when nothing is needed, the video row and everything under ``result_store/<platform>/<video>/``
  go too. An admin deletes every run of the video (nothing is needed);
- the caller's upload records of the video go; an uploaded file (stored once per content hash,
  :mod:`trendflow.api.uploads`) goes only when no other upload record names it, so another
  user's upload of the same bytes stays analysable. The video's file lock is held meanwhile.

Store objects are removed inside the database transaction that locks the video's runs, before
the rows change: a failure part-way leaves rows pointing at missing files (the request can be
repeated), never files that no row or manifest accounts for.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from trendflow.api.uploads import RECORD_NAME, StoredUpload, stored_upload
from trendflow.contracts.keys import (
    frames_prefix,
    manifest_key,
    run_prefix,
    upload_prefix,
    validate_platform_id,
    validate_video_id,
    video_prefix,
)
from trendflow.contracts.manifest import Manifest, save_manifest
from trendflow.db.repositories import runs as runs_repo
from trendflow.db.repositories import videos as videos_repo
from trendflow.db.repositories.users import User
from trendflow.errors import ArtifactNotFound, Conflict, NotFound
from trendflow.storage.base import ResultStore


@dataclass(frozen=True, slots=True)
class RunRef:
    """What deciding a deletion needs to know about one run of the video."""

    run_id: uuid.UUID
    user_id: uuid.UUID | None
    status: str
    reused_from_run_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class DeletionPlan:
    """Runs whose files and rows go, the caller's runs kept for others, and the video's fate."""

    delete: tuple[uuid.UUID, ...]
    unlink: tuple[uuid.UUID, ...]
    video_goes: bool


def plan_deletion(runs: Sequence[RunRef], *, caller: uuid.UUID | None) -> DeletionPlan:
    """Decide the deletion of one video's ``runs`` for ``caller`` (``None``: an admin, for all).

    See the module docstring for the rules. The caller's unfinished runs must have been refused
    before (:class:`Conflict`); this function only decides.
    """
    if caller is None:
        return DeletionPlan(tuple(r.run_id for r in runs), (), True)
    others = [
        r for r in runs
        if (r.user_id is not None and r.user_id != caller)
        or (r.user_id is None and r.status not in runs_repo.TERMINAL_STATUSES)
    ]
    needed = {r.run_id for r in others} | {
        r.reused_from_run_id for r in others if r.reused_from_run_id is not None
    }
    return DeletionPlan(
        delete=tuple(r.run_id for r in runs if r.run_id not in needed),
        unlink=tuple(r.run_id for r in runs if r.run_id in needed and r.user_id == caller),
        video_goes=not needed,
    )


@dataclass(frozen=True, slots=True)
class Deletion:
    """What one deletion removed (the route's answer)."""

    runs_deleted: int
    runs_kept_for_others: int
    uploads_deleted: int
    objects_deleted: int
    video_row_deleted: bool


async def delete_video(
    conn: asyncpg.Connection,
    store: ResultStore,
    *,
    user: User,
    platform_id: str,
    video_id: str,
) -> Deletion:
    """Delete ``user``'s runs, files and uploads of the video (an admin: everyone's).

    Raises :class:`NotFound` when the user has nothing of the video (whether others have is
    not revealed) and :class:`Conflict` while one of the user's runs of it is unfinished.
    """
    validate_platform_id(platform_id)
    validate_video_id(video_id)
    caller = None if user.role == "admin" else user.user_id
    async with conn.transaction():
        runs = [
            RunRef(r["run_id"], r["user_id"], r["status"], r["reused_from_run_id"])
            for r in await runs_repo.lock_video_runs(
                conn, platform_id=platform_id, video_id=video_id)
        ]
        mine = [r for r in runs if caller is None or r.user_id == caller]
        if video_id.startswith("up-"):
            await videos_repo.lock_video_files(conn, platform_id=platform_id,
                                               video_id=video_id)
        records = await upload_records(store, video_id)
        uploads = [uid for uid, rec in records.items()
                   if caller is None or rec.user_id == caller]
        video_exists = await videos_repo.video_exists(
            conn, platform_id=platform_id, video_id=video_id)
        if not mine and not uploads and not (caller is None and video_exists):
            raise NotFound(f"you have no runs or uploads of video {platform_id}/{video_id}",
                           platform_id=platform_id, video_id=video_id)
        active = [str(r.run_id) for r in mine if r.status not in runs_repo.TERMINAL_STATUSES]
        if active:
            raise Conflict(f"cancel the unfinished runs of this video first: {', '.join(active)}",
                           run_ids=active)
        plan = plan_deletion(runs, caller=caller)

        for run_id in plan.unlink:
            await _forget_owner(store, manifest_key(platform_id, video_id, run_id))
        objects = 0
        for run_id in plan.delete:
            objects += await store.delete_prefix(run_prefix(platform_id, video_id, run_id))
        for run_id in plan.delete + plan.unlink:
            objects += await store.delete_prefix(frames_prefix(run_id))
        for upload_id in uploads:
            objects += await store.delete_prefix(upload_prefix(upload_id))
        kept = {rec.stored.file_key for uid, rec in records.items() if uid not in uploads}
        for key in sorted({records[uid].stored.file_key for uid in uploads} - kept):
            if await store.exists(key):  # a record written before content keys: gone with it
                await store.delete(key)
                objects += 1
        row_deleted = False
        if plan.video_goes:
            objects += await store.delete_prefix(video_prefix(platform_id, video_id))
            # Cascades to the runs, their components, artifacts and render cache.
            row_deleted = await videos_repo.delete_video(conn, platform_id=platform_id,
                                                         video_id=video_id)
        else:
            await runs_repo.delete_runs(conn, run_ids=plan.delete)
            await runs_repo.forget_owners(conn, run_ids=plan.unlink)
    deleted_mine = {r.run_id for r in mine} & set(plan.delete)
    return Deletion(runs_deleted=len(deleted_mine), runs_kept_for_others=len(plan.unlink),
                    uploads_deleted=len(uploads), objects_deleted=objects,
                    video_row_deleted=row_deleted)


async def _forget_owner(store: ResultStore, key: str) -> None:
    """Rewrite the manifest at ``key`` without its ``run.user_id`` (atomic; still valid)."""
    try:
        manifest = Manifest.from_json_bytes(await store.get_bytes(key), where=key)
    except ArtifactNotFound:
        return  # a run without a manifest names nobody in the store
    if manifest.run.user_id is not None:
        manifest.run.user_id = None
        await save_manifest(store, manifest)


@dataclass(frozen=True, slots=True)
class UploadRecord:
    user_id: uuid.UUID | None
    stored: StoredUpload


async def upload_records(store: ResultStore, video_id: str) -> dict[str, UploadRecord]:
    """Every upload record of this video (of every user), by upload id."""
    if not video_id.startswith("up-"):
        return {}
    keys = [k for k in await store.list("uploads/") if k.endswith("/" + RECORD_NAME)]
    raws = await asyncio.gather(*(store.get_bytes(k) for k in keys))
    out = {}
    for key, raw in zip(keys, raws, strict=True):
        rec = json.loads(raw)
        if rec["upload"]["video_id"] != video_id:
            continue
        upload_id = key.split("/")[1]
        owner = rec.get("user_id")
        out[upload_id] = UploadRecord(None if owner is None else uuid.UUID(owner),
                                      stored_upload(upload_id, rec))
    return out
