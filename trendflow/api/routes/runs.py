"""``/api/estimate`` and ``/api/runs``: price, create, list, follow, read and cancel runs."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import Response

from trendflow.api import runs as service
from trendflow.api.deps import Conn, Context, CurrentUser, SettingsDep, StoreDep
from trendflow.api.errors import error_responses
from trendflow.api.presentation import component_json
from trendflow.api.schemas import (
    ComponentDataOut,
    ErrorOut,
    EstimateIn,
    EstimateOut,
    RunCreatedOut,
    RunIn,
    RunOut,
    RunPage,
    RunResultOut,
    RunStatusOut,
)
from trendflow.contracts.keys import artifact_key, manifest_key
from trendflow.contracts.manifest import Manifest
from trendflow.db.repositories import components as rc_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.errors import ArtifactNotFound, RunNotReady, ServiceUnavailable
from trendflow.runs import end_run

router = APIRouter(tags=["runs"])
ComponentName = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 404)
}
# What reading the video's facts can answer: out of the limits (422), YouTube failing after
# the retries or reporting no duration (502 download_failed; 404 video_unavailable is above).
_VIDEO_ERRORS = error_responses(422, 502)
_LOCATION = {"Location": {"description": "the run's URL (``GET`` it for the results)",
                          "required": True, "schema": {"type": "string"}}}
_POLL_HINT = {"Retry-After": {
    "description": "while the run is not finished: seconds until the next poll is worth it",
    "schema": {"type": "integer"}}}


@router.post("/api/estimate", response_model=EstimateOut,
             responses={**_ERRORS, 409: {"model": ErrorOut}, **_VIDEO_ERRORS})
async def estimate(
    body: EstimateIn, user: CurrentUser, conn: Conn, ctx: Context, store: StoreDep
) -> EstimateOut:
    """Price (credits) and expected time of a run, before it starts: the body ``POST
    /api/runs`` takes, checked alike (``409 price_changed`` above ``max_total``). Nothing is
    reserved."""
    return await service.estimate_run(conn, body, user=user, settings=ctx.settings, store=store,
                                      serving=ctx.model_serving, youtube=ctx.youtube)


@router.post(
    "/api/runs",
    status_code=201,
    response_model=RunCreatedOut,
    responses={**_ERRORS, 201: {"headers": _LOCATION}, 402: {"model": ErrorOut},
               409: {"model": ErrorOut}, 429: {"model": ErrorOut}, **_VIDEO_ERRORS},
)
async def create_run(
    body: RunIn,
    user: CurrentUser,
    conn: Conn,
    ctx: Context,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> RunCreatedOut:
    """Queue an analysis (or reuse a fresh cached one at once: ``reused_from_run_id``);
    ``Location`` is the run's URL."""
    run, created, est = await service.create_run(
        conn, body, user=user, idempotency_key=idempotency_key, settings=ctx.settings,
        store=ctx.store, serving=ctx.model_serving, youtube=ctx.youtube,
    )
    if created and run.status == "queued" and ctx.scheduler is not None:
        ctx.spawn(ctx.scheduler.wake())
    response.headers["Location"] = f"/api/runs/{run.run_id}"
    shown = await service.public_run(conn, run)
    shown.warnings = [*service.creation_warnings(body, ctx.settings), *shown.warnings]
    return RunCreatedOut(**shown.model_dump(), created=created, estimate=est)


@router.get("/api/runs", response_model=RunPage, responses=_ERRORS)
async def list_runs(
    user: CurrentUser,
    conn: Conn,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: datetime | None = None,
) -> RunPage:
    """Your runs, newest first; follow ``next_before`` for the next page."""
    runs = await runs_repo.list_runs(
        conn, user_id=user.user_id, limit=min(limit, settings.api.page_size_max),
        created_before=before,
    )
    items = [await service.public_run(conn, r) for r in runs]
    return RunPage(items=items, next_before=items[-1].created_at if len(items) == limit else None)


@router.get("/api/runs/{run_id}/status", response_model=RunStatusOut,
            responses={**_ERRORS, 200: {"headers": _POLL_HINT}})
async def run_status(
    run_id: uuid.UUID, user: CurrentUser, conn: Conn, response: Response
) -> RunStatusOut:
    """Stage, per-component status and progress, ETA. While the run is not finished,
    ``Retry-After`` says when to poll again."""
    status = await service.run_status(conn, run_id=run_id, user=user)
    if status.status not in runs_repo.TERMINAL_STATUSES:
        response.headers["Retry-After"] = str(service.STATUS_POLL_S)
    return status


async def _finished_run(conn: Conn, run_id: uuid.UUID, user: CurrentUser) -> runs_repo.Run:
    return await runs_repo.get_run(conn, run_id=run_id, user_id=user.user_id)


@router.get("/api/runs/{run_id}", response_model=RunResultOut, responses=_ERRORS)
async def run_result(
    run_id: uuid.UUID, user: CurrentUser, conn: Conn, store: StoreDep
) -> RunResultOut:
    """The run, its manifest and the presentation JSON of every finished component."""
    run = await _finished_run(conn, run_id, user)
    source_id = service.artifact_run_id(run)
    try:
        raw = await store.get_bytes(manifest_key(run.platform_id, run.video_id, source_id))
    except ArtifactNotFound:
        raise RunNotReady(
            f"run {run_id} has no results yet (status {run.status})", status=run.status
        ) from None
    manifest = Manifest.from_json_bytes(raw)
    if manifest.run.user_id is not None and manifest.run.user_id != str(user.user_id):
        # A cached run shows the files of another user's run: never that user's id.
        manifest.run.user_id = None
    components = {}
    for name in sorted(set(manifest.artifact_keys().values())):
        data = await store.get_bytes(artifact_key(run.platform_id, run.video_id, source_id, name))
        components[name] = ComponentDataOut.model_validate(
            component_json(name, data, run_id=str(run.run_id)))
    shown = manifest.model_dump(mode="json")
    if str(source_id) != str(run.run_id):  # a reuse names its own run, never the cached one
        shown = json.loads(json.dumps(shown).replace(str(source_id), str(run.run_id)))
    return RunResultOut(
        run=await service.public_run(conn, run), manifest=shown, components=components,
    )


async def _npz(conn: Conn, store: StoreDep, run_id: uuid.UUID, user: CurrentUser,
               name: str) -> bytes:
    run = await _finished_run(conn, run_id, user)
    await rc_repo.get_run_component(conn, run_id=run.run_id, component_name=name)
    return await store.get_bytes(
        artifact_key(run.platform_id, run.video_id, service.artifact_run_id(run), name)
    )


@router.get("/api/runs/{run_id}/components/{name}.npz", response_class=Response,
            responses={**_ERRORS, 200: {"content": {"application/octet-stream": {
                "schema": {"type": "string", "format": "binary"}}}}})
async def component_npz(
    run_id: uuid.UUID, name: ComponentName, user: CurrentUser, conn: Conn, store: StoreDep
) -> Response:
    """The component's NPZ file (``np.load(..., allow_pickle=False)`` reads it)."""
    data = await _npz(conn, store, run_id, user, name)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}.npz"'},
    )


@router.get("/api/runs/{run_id}/components/{name}", response_model=ComponentDataOut,
            responses=_ERRORS)
async def component(
    run_id: uuid.UUID, name: ComponentName, user: CurrentUser, conn: Conn, store: StoreDep
) -> ComponentDataOut:
    """One component's presentation JSON: every NPZ key with dtype, shape, unit and values."""
    return ComponentDataOut.model_validate(
        component_json(name, await _npz(conn, store, run_id, user, name), run_id=str(run_id)))


@router.post("/api/runs/{run_id}/cancel", response_model=RunOut, responses=_ERRORS)
async def cancel(run_id: uuid.UUID, user: CurrentUser, conn: Conn, ctx: Context) -> RunOut:
    """Cancel a queued or running run; what finished is kept (finished runs are unchanged)."""
    run = await runs_repo.get_run(conn, run_id=run_id, user_id=user.user_id)
    if run.status in runs_repo.TERMINAL_STATUSES:
        return await service.public_run(conn, run)
    if ctx.scheduler is not None:
        await ctx.scheduler.cancel(str(run_id))
    elif run.status == "queued":
        await end_run(conn, run_id=run_id, status="cancelled")
    else:
        raise ServiceUnavailable("the scheduler is not reachable; a running run cannot be "
                                 "cancelled now", run_id=str(run_id))
    return await service.public_run(
        conn, await runs_repo.get_run(conn, run_id=run_id, user_id=user.user_id))
