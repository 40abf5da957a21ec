"""``POST /api/uploads``: stream a video file into the store (checked before acceptance);
``GET /api/uploads/{upload_id}``: what was accepted."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response

from trendflow.api.deps import Context, CurrentUser, SettingsDep, StoreDep
from trendflow.api.errors import error_responses
from trendflow.api.schemas import UPLOAD_ID_PATTERN, UploadOut
from trendflow.api.uploads import load_upload, parse_meta, receive_upload

router = APIRouter(prefix="/api/uploads", tags=["uploads"])


@router.post(
    "",
    status_code=201,
    response_model=UploadOut,
    responses={**error_responses(413, 415, 422, 429), 201: {"headers": {"Location": {
        "description": "the upload's URL", "required": True, "schema": {"type": "string"}}}}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def create_upload(
    request: Request,
    response: Response,
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
    upload = await receive_upload(
        chunks=request.stream(),
        # Content-Length is the transport's (the HTTP server has checked it), not a parameter.
        declared_size=int(request.headers["content-length"])
        if "content-length" in request.headers else None,
        filename=x_filename,
        meta=meta,
        user_id=user.user_id,
        settings=settings,
        store=store,
        db=ctx.db,
    )
    response.headers["Location"] = f"/api/uploads/{upload.upload_id}"
    return upload


@router.get("/{upload_id}", response_model=UploadOut, responses=error_responses(404))
async def get_upload(
    upload_id: Annotated[str, Path(pattern=UPLOAD_ID_PATTERN)], user: CurrentUser,
    store: StoreDep,
) -> UploadOut:
    """One of your uploads, as it was accepted."""
    return await load_upload(store, upload_id=upload_id, user_id=user.user_id)
