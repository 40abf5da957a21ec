"""``GET /api/runs/{id}/forecast``: the forecast with its interval, contributions and what-ifs."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from trendflow.api import runs as service
from trendflow.api.deps import Conn, CurrentUser, StoreDep
from trendflow.api.schemas import ErrorOut, ForecastOut
from trendflow.contracts.keys import artifact_key
from trendflow.contracts.npz import decode_npz
from trendflow.db.repositories import components as rc_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.errors import RunNotReady
from trendflow.forecast.present import forecast_json

router = APIRouter(tags=["runs"])
COMPONENT = "popularity_prediction"
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 404, 409)
}


@router.get("/api/runs/{run_id}/forecast", response_model=ForecastOut, responses=_ERRORS)
async def forecast(
    run_id: uuid.UUID, user: CurrentUser, conn: Conn, store: StoreDep
) -> ForecastOut:
    """Views and likes (p10/p50/p90, 80 % interval) at the horizon, the display strings, the
    features that moved the forecast most (tree SHAP, log1p scale) and the what-if effects.

    404 when the run has no such run or its profile no forecast; 409
    ``run_not_ready`` while it is not computed yet.
    """
    run = await runs_repo.get_run(conn, run_id=run_id, user_id=user.user_id)
    record = await rc_repo.get_run_component(conn, run_id=run.run_id, component_name=COMPONENT)
    if record.status != "ok":
        raise RunNotReady(f"run {run_id} has no forecast yet (status {record.status})",
                          status=record.status)
    data = await store.get_bytes(
        artifact_key(run.platform_id, run.video_id, service.artifact_run_id(run), COMPONENT)
    )
    artifact = decode_npz(data, where=f"{COMPONENT}.npz")
    return ForecastOut.model_validate(forecast_json(artifact.arrays, artifact.meta.model))
