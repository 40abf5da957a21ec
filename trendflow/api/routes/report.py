"""``GET /api/runs/{id}/report?locale=&sentences=``: the run's written analysis.

``engine: template`` profiles get the deterministic text; ``engine: llm`` profiles the LLM's
text of the run's brief, from the render cache when the same request was rendered before
(:func:`trendflow.render.service.run_report`).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from trendflow.api.deps import Conn, CurrentUser, SettingsDep, StoreDep
from trendflow.api.schemas import ErrorOut, ReportOut
from trendflow.db.repositories import runs as runs_repo
from trendflow.render import service

router = APIRouter(tags=["runs"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 404, 409, 422, 429, 502, 503, 504)
}
_LO, _HI = service.SENTENCES_ALLOWED


@router.get("/api/runs/{run_id}/report", response_model=ReportOut, responses=_ERRORS)
async def run_report(
    run_id: uuid.UUID, user: CurrentUser, conn: Conn, store: StoreDep, settings: SettingsDep,
    locale: Literal["ru", "en"] | None = None,
    sentences: Annotated[int | None, Query(ge=_LO, le=_HI)] = None,
) -> Any:
    """The run's text analysis. ``engine`` says how it was made: ``template`` (data-driven
    sentences, no LLM) or ``llm`` (the brief's statements phrased by the LLM, validated:
    ``sections``, ``sentences``, ``recommendations``, ``usage``, ``cached``)."""
    run = await runs_repo.get_run(conn, run_id=run_id, user_id=user.user_id)
    return await service.run_report(conn, store, settings, run, locale=locale,
                                    sentences=sentences)
