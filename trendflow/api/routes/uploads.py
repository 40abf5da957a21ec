"""``POST /api/uploads``: stream a video file into the store (checked before acceptance)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request

from trendflow.api.deps import Context, CurrentUser, SettingsDep, StoreDep
from trendflow.api.errors import error_responses
from trendflow.api.schemas import UploadOut
from trendflow.api.uploads import parse_meta, receive_upload

router = APIRouter(prefix="/api/uploads", tags=["uploads"])


@router.post(
    "",
    status_code=201,
    response_model=UploadOut,
    responses=error_responses(413, 415, 422, 429),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def create_upload(
    request: Request,
    user: CurrentUser,
    ctx: Context,
    settings: SettingsDep,
    store: StoreDep,
    x_upload_meta: Annotated[
        str | None,
        Header(description='JSON metadata, e.g. {"title": "…", "tags": ["…"]}', max_length=8192),
    ] = None,
    x_filename: Annotated[str | None, Header(max_length=255)] = None,
) -> UploadOut:
    """Send the file as the raw request body; metadata in the ``X-Upload-Meta`` header."""
    ctx.upload_limiter.check(user.user_id)  # before reading a byte of the body
    meta = parse_meta(x_upload_meta)
    return await receive_upload(
        chunks=request.stream(),
        # Content-Length is the transport's (the HTTP server has checked it), not a parameter.
        declared_size=int(request.headers["content-length"])
        if "content-length" in request.headers else None,
        filename=x_filename,
        meta=meta,
        user_id=user.user_id,
        settings=settings,
        store=store,
    )
