"""``GET /api/runs/{id}/frame?t=``: the frame of one moment of your run, while it is kept.

The Studio shows it as the thumbnail of the hovered moment. It is the stored JPEG of the kept
frame nearest ``t`` (the analysis timeline: at most 320 px high), read from the run's frames
archive (:func:`trendflow.pipeline.frames_archive.nearest_frame`) — or, for a run served from
the cache, the archive of the run it reuses. Frames are kept ``segmenter.frames_retention_days``
(7); after that the answer is ``410 frames_expired``.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from trendflow.api.deps import Conn, CurrentUser, SettingsDep, StoreDep
from trendflow.api.errors import error_responses
from trendflow.api.runs import artifact_run_id
from trendflow.db.repositories import runs as runs_repo
from trendflow.errors import FramesExpired, RunNotReady
from trendflow.pipeline.frames_archive import nearest_frame

router = APIRouter(tags=["runs"])


@router.get(
    "/api/runs/{run_id}/frame",
    response_class=Response,
    responses={
        **error_responses(400, 401, 404, 409, 410),
        200: {
            "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
            "headers": {"X-Frame-Time-S": {
                "description": "the moment of the frame served (the kept frame nearest t)",
                "schema": {"type": "number"}}},
        },
    },
)
async def run_frame(
    run_id: uuid.UUID,
    user: CurrentUser,
    conn: Conn,
    store: StoreDep,
    settings: SettingsDep,
    t: Annotated[float, Query(ge=0, le=24 * 3600, description="the moment, seconds")],
) -> Response:
    """The kept frame of your run nearest the moment ``t`` as a JPEG (``404 run_not_found``
    for a run that is not yours; ``409 run_not_ready`` before any frame is decoded;
    ``410 frames_expired`` once retention has deleted the run's frames)."""
    run = await runs_repo.get_run(conn, run_id=run_id, user_id=user.user_id)
    frame = await nearest_frame(store, str(artifact_run_id(run)), t,
                                chunk_seconds=settings.segmenter.chunk_seconds)
    if frame is None:
        if run.status not in runs_repo.TERMINAL_STATUSES:
            raise RunNotReady(f"run {run_id} has no decoded frame yet", status=run.status)
        days = settings.segmenter.frames_retention_days
        raise FramesExpired(
            f"the frames of run {run_id} are no longer kept (frames are kept {days} days)",
            retention_days=days,
        )
    return Response(frame.jpeg, media_type="image/jpeg", headers={
        "X-Frame-Time-S": f"{frame.timestamp_s:.3f}",
        "Cache-Control": "private, max-age=3600",
    })
