"""Uploads: a video streamed into the result store, stored once per content hash.

The body is streamed to a temporary file (never held in memory) while its size is capped and
its sha256 computed; PyAV then probes it (:func:`trendflow.pipeline.probe.probe`) and the
Segmenter's duration bounds are applied *before* anything is stored. Only then are the upload's
record (``uploads/<id>/upload.json``: owner, video id, probe facts, the user's metadata, where
its bytes are) and its file (``upload_content/<sha256>``) written. The record decides who may
use the upload; the file is shared by every upload of the same bytes, whoever sent them.

Nothing in the answer depends on whether those bytes were stored before (a new upload id, the
same fields, the file written again in place either way), so no user learns that another one
uploaded the same video. A file goes when the last record that names it is deleted
(:func:`trendflow.api.deletion.delete_video`), under the video's file lock, which an upload
also holds while it writes its record and file.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from trendflow.api.schemas import UploadOut, VideoMetaIn
from trendflow.contracts.identity import UploadHasher
from trendflow.contracts.keys import upload_content_key, upload_key, validate_upload_id
from trendflow.db import Database
from trendflow.db.repositories import videos as videos_repo
from trendflow.errors import (
    ArtifactNotFound,
    InputError,
    UploadNotFound,
    UploadTooLarge,
    VideoTooLong,
    VideoTooShort,
    field_problems,
)
from trendflow.pipeline.probe import check_truncation, probe, scan_packets
from trendflow.settings import Settings
from trendflow.storage.base import ResultStore

RECORD_NAME = "upload.json"
_EXT = re.compile(r"\.[A-Za-z0-9]{1,8}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def parse_meta(raw: str | None) -> VideoMetaIn:
    """The ``X-Upload-Meta`` header (JSON) as validated metadata; absent = empty metadata."""
    if raw is None or not raw.strip():
        return VideoMetaIn()
    try:
        return VideoMetaIn.model_validate_json(raw)
    except ValidationError as exc:
        errors = field_problems(exc.errors(), root="meta")
        listed = "; ".join(f"{e['field']}: {e['problem']}" for e in errors)
        raise InputError(f"invalid upload metadata: {listed}", errors=errors) from None


def _extension(filename: str | None) -> str:
    match = _EXT.search(filename or "")
    return match.group(0).lower() if match else ".mp4"


def _stored_name(filename: str | None) -> str:
    """The name the upload keeps (``X-Filename``'s last path segment made key-safe: other
    characters become ``_``); ``source.<ext>`` when nothing usable is left."""
    base = re.split(r"[/\\]", filename or "")[-1]
    safe = _UNSAFE.sub("_", base).lstrip(".")[:128]
    if not _EXT.search(safe) or safe == RECORD_NAME:
        return "source" + _extension(filename)
    return safe


async def receive_upload(
    *,
    chunks: AsyncIterator[bytes],
    declared_size: int | None,
    filename: str | None,
    meta: VideoMetaIn,
    user_id: uuid.UUID,
    settings: Settings,
    store: ResultStore,
    db: Database,
) -> UploadOut:
    """Stream, check and store one upload; nothing is stored unless every check passed."""
    limit = settings.api.max_upload_mb * (1 << 20)
    if declared_size is not None and declared_size > limit:
        raise UploadTooLarge(
            f"the upload is {declared_size} bytes; the limit is {limit}", limit_bytes=limit
        )
    tmp_root = settings.data_dir / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_root, prefix="upload-") as tmp:
        path = Path(tmp) / _stored_name(filename)
        hasher = UploadHasher()
        size = 0
        with path.open("wb") as fh:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise UploadTooLarge(
                        f"the upload exceeds the limit of {limit} bytes", limit_bytes=limit
                    )
                hasher.update(chunk)
                await asyncio.to_thread(fh.write, chunk)
        if size == 0:
            raise InputError("the upload is empty: send the video file as the request body")
        facts = await asyncio.to_thread(probe, path)
        # The Segmenter's check, here so that a cut-off file is refused before it is stored
        # (it would fail every run). Demuxing reads the file without decoding it. A file whose
        # demuxing broke off is left to the Segmenter, which may repair it.
        scan = await asyncio.to_thread(scan_packets, path)
        if scan.demux_error is None:
            check_truncation(facts, scan, path.name)
        seg = settings.segmenter
        if facts.claimed_duration_s < seg.min_duration_s:
            raise VideoTooShort(
                f"the video lasts {facts.claimed_duration_s:.1f} s; at least "
                f"{seg.min_duration_s:g} s are needed",
                duration_s=facts.claimed_duration_s,
            )
        if facts.claimed_duration_s > seg.max_duration_s:
            raise VideoTooLong(
                f"the video lasts {facts.claimed_duration_s:.0f} s; at most "
                f"{seg.max_duration_s:g} s are analysed",
                duration_s=facts.claimed_duration_s,
            )
        upload_id = str(uuid.uuid4())
        out = UploadOut(
            upload_id=upload_id,
            video_id=hasher.video_id,
            filename=path.name,
            size_bytes=size,
            sha256=hasher.sha256,
            duration_s=facts.claimed_duration_s,
            width=facts.width,
            height=facts.height,
            fps=facts.fps,
            has_audio=facts.has_audio,
            meta=meta,
            created_at=datetime.now(UTC),
        )
        content = upload_content_key(hasher.sha256)
        record = {"user_id": str(user_id), "upload": out.model_dump(mode="json"),
                  "content_key": content}
        async with db.acquire() as conn, conn.transaction():
            await videos_repo.lock_video_files(conn, platform_id="upload",
                                               video_id=hasher.video_id)
            # The record first: a deletion that sees no record of these bytes any more cannot
            # have started before this upload took the lock.
            await store.put_bytes(upload_key(upload_id, RECORD_NAME),
                                  json.dumps(record).encode())
            await store.put_file(content, path)  # the same bytes again if stored before
    return out


@dataclass(frozen=True, slots=True)
class StoredUpload:
    """An upload as its record stores it: what the user was told, and where its bytes are."""

    upload: UploadOut
    file_key: str


def stored_upload(upload_id: str, record: dict[str, Any]) -> StoredUpload:
    """The :class:`StoredUpload` of one record (a record written before uploads were stored
    by content hash names no ``content_key``: its file is beside it)."""
    upload = UploadOut.model_validate(record["upload"])
    key = record.get("content_key") or upload_key(upload_id, upload.filename)
    return StoredUpload(upload, str(key))


async def load_stored_upload(store: ResultStore, *, upload_id: str,
                             user_id: uuid.UUID) -> StoredUpload:
    """The user's upload; someone else's or a missing one is ``upload_not_found``."""
    validate_upload_id(upload_id)
    try:
        record = json.loads(await store.get_bytes(upload_key(upload_id, RECORD_NAME)))
    except ArtifactNotFound:
        record = None
    if record is None or record.get("user_id") != str(user_id):
        raise UploadNotFound(f"upload {upload_id} does not exist", upload_id=upload_id)
    return stored_upload(upload_id, record)


async def load_upload(store: ResultStore, *, upload_id: str, user_id: uuid.UUID) -> UploadOut:
    """The user's upload as it was accepted (:func:`load_stored_upload`)."""
    return (await load_stored_upload(store, upload_id=upload_id, user_id=user_id)).upload
