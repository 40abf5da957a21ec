"""``/health``, ``/health/live``, ``/metrics`` and the development-only ``/process/sync``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from trendflow.api import runs as service
from trendflow.api.deps import Conn, Context, CurrentUser
from trendflow.api.errors import error_responses
from trendflow.api.schemas import ErrorOut, HealthOut, RunIn, RunStatusOut
from trendflow.db.repositories import runs as runs_repo
from trendflow.errors import EndpointDisabled, ServiceUnavailable, TimeoutExceeded, TrendflowError
from trendflow.metrics import get_metrics, render_latest

router = APIRouter(tags=["system"])


async def _check(name: str, probe: Any) -> tuple[str, dict[str, Any]]:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(probe, 5.0)
        out: dict[str, Any] = {"ok": True, **(detail or {})}
    except TrendflowError as exc:
        out = {"ok": False, "code": exc.code, "message": exc.message}
    except Exception as exc:  # health reports every failure instead of raising
        out = {"ok": False, "code": type(exc).__name__, "message": str(exc)[:200]}
    out["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return name, out


@router.get("/health/live")
async def live() -> dict[str, str]:
    """The process answers (no dependency is checked)."""
    return {"status": "ok"}


_HEALTH_503 = {
    "model": HealthOut | ErrorOut,
    "description": "A check failed (the health body) or the replica is overloaded (`overloaded`)",
    "headers": error_responses(503)[503]["headers"],
}


@router.get("/health", response_model=HealthOut, responses={503: _HEALTH_503})
async def health(ctx: Context) -> JSONResponse:
    """Database, scheduler, result store and Triton, each reported; 503 if any is down."""

    async def db() -> dict[str, Any]:
        async with ctx.db.acquire() as conn:
            queued = await runs_repo.queue_length(conn)
        get_metrics().set_queue_length(queued)
        return {"queued_runs": queued}

    async def store() -> dict[str, Any]:
        await ctx.store.check()
        return {"location": ctx.store.describe()}

    async def scheduler() -> dict[str, Any]:
        if ctx.scheduler is None:
            raise TimeoutExceeded("no scheduler is connected to this API instance")
        info = await ctx.scheduler.describe()
        return {"incarnation": info.get("incarnation"), "active_runs": len(info["active_runs"])}

    async def triton() -> dict[str, Any]:
        cfg = ctx.settings.triton
        if not cfg.enabled:
            return {"enabled": False}
        if not await ctx.model_serving.ready(fresh=True):
            raise ServiceUnavailable(f"Triton at {cfg.url} ({cfg.protocol}) is not ready")
        return {"url": cfg.url, "protocol": cfg.protocol}

    results = dict(await asyncio.gather(
        _check("database", db()), _check("store", store()), _check("scheduler", scheduler()),
        _check("triton", triton()),
    ))
    ok = all(r["ok"] for r in results.values())
    body = HealthOut(status="ok" if ok else "degraded", checks=results)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {
    "text/plain": {"schema": {"type": "string"}}}}})
async def metrics() -> Response:
    """Prometheus text exposition (``trendflow_*``)."""
    return Response(render_latest(), media_type="text/plain; version=0.0.4")


@router.post("/process/sync", response_model=RunStatusOut,
             responses=error_responses(402, 404, 409, 422, 429, 502, 504))
async def process_sync(body: RunIn, user: CurrentUser, conn: Conn, ctx: Context) -> RunStatusOut:
    """Development only (``TRENDFLOW_API__SYNC_ENDPOINT_ENABLED``): create a run and wait for
    it to finish (at most ``sync_timeout_s``, 5 minutes)."""
    if not ctx.settings.api.sync_endpoint_enabled:
        raise EndpointDisabled("/process/sync is disabled (development only)")
    run, _, _ = await service.create_run(
        conn, body, user=user, idempotency_key=None, settings=ctx.settings, store=ctx.store,
        serving=ctx.model_serving, youtube=ctx.youtube,
    )
    if ctx.scheduler is not None:
        await ctx.scheduler.wake()
    deadline = time.monotonic() + ctx.settings.api.sync_timeout_s
    while True:
        status = await service.run_status(conn, run_id=run.run_id, user=user)
        if status.status in runs_repo.TERMINAL_STATUSES:
            return status
        if time.monotonic() > deadline:
            raise TimeoutExceeded(
                f"run {run.run_id} did not finish within {ctx.settings.api.sync_timeout_s:g} s; "
                "it continues: poll /api/runs/{id}/status", run_id=str(run.run_id)
            )
        await asyncio.sleep(1.0)
