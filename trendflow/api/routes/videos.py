"""``DELETE /api/videos/{platform}/{id}`` (right to deletion).

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

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from trendflow.api import deletion
from trendflow.api.deps import Conn, CurrentUser, StoreDep
from trendflow.api.schemas import ErrorOut

router = APIRouter(tags=["runs"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 404, 409)
}


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
