"""The render stage of a run whose profile renders with ``engine: llm``: after the components,
before the run ends.

It shows as the run's stage ``rendering`` and as the run's ``render`` row in
``run_components`` (``/status``): ``running``, then ``ok`` with the text in the render cache, or
``error`` with the render's code (``llm_unavailable``, ``llm_rate_limited``, ``render_invalid``,
…). A failed render never fails the run: the run ends ``ok`` with its components' results and
the warning ``render failed: <code>``, and the render's reserved price
(:data:`~trendflow.billing.estimate.RENDER_LINE`) is released by the settlement, as a failed
optional component's is. The text is the run owner's default report (the account's language and
length), so ``GET /api/runs/{id}/report`` without parameters is then served from the cache.

The gateway call is blocking I/O: it runs in a thread, and no database connection is held while
it runs, so the scheduler's loop and its other runs go on. The stage is bounded by the gateway's
own timeouts and retries (``settings.llm``), not by the components' run budget.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from trendflow.billing.estimate import RENDER_LINE
from trendflow.contracts.manifest import utc_now
from trendflow.contracts.profile import ProfileConfig
from trendflow.db.repositories import components as rc_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.errors import RenderError, TrendflowError
from trendflow.metrics import get_metrics
from trendflow.render import RENDER_FAILED
from trendflow.render.service import prepare_report, store_report, write_report

if TYPE_CHECKING:
    from trendflow.actors.execution import RunServices

log = logging.getLogger(__name__)
STAGE = "rendering"


async def render_stage(services: RunServices, run: runs_repo.Run, profile: ProfileConfig,
                       budget: asyncio.Timeout) -> None:
    """Render ``run``'s report when its profile asks for the LLM (see the module docstring)."""
    if profile.render.engine != "llm":
        return
    budget.reschedule(None)  # the gateway's timeouts bound the render
    db, started = services.db, utc_now()

    async def row(status: rc_repo.ComponentStatus, conn: Any = None, **fields: Any) -> None:
        if conn is None:
            async with db.acquire() as conn:
                await row(status, conn, **fields)
            return
        await rc_repo.upsert_run_component(
            conn, run_id=run.run_id, component_name=RENDER_LINE, status=status,
            required=False, started_at=started, **fields)

    # the stage and the ``render`` row change together: /status never shows one without the other
    async with db.acquire() as conn, conn.transaction():
        await runs_repo.set_run_stage(conn, run_id=run.run_id, stage=STAGE)
        await row("running", conn)
    try:
        async with db.acquire() as conn:
            ready = await prepare_report(conn, services.store, services.settings, run,
                                         during_run=True)
        if isinstance(ready, dict):
            report = ready
        else:
            record = await write_report(ready)
            async with db.acquire() as conn:
                report = await store_report(conn, ready, record)
    except asyncio.CancelledError:
        await asyncio.shield(row("skipped", finished_at=utc_now()))
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the render leaves the run ok
        error = exc if isinstance(exc, TrendflowError) else RenderError(
            f"the render failed: {type(exc).__name__}: {exc}")
        log.warning("run %s: render failed: %s", run.run_id, error.code)
        get_metrics().error(error.code)
        await _failed(services, run, row, error, started)
        return
    finished = utc_now()
    await row("ok", finished_at=finished, model=report.get("llm_model"),
              duration_ms=_ms(started, finished),
              notes=[{"usage": report.get("usage"), "attempts": report.get("attempts"),
                      "cached": report.get("cached")}])


async def _failed(services: RunServices, run: runs_repo.Run, row: Any, error: TrendflowError,
                  started: Any) -> None:
    finished = utc_now()
    await row("error", finished_at=finished, duration_ms=_ms(started, finished),
              error={"code": error.code, "message": error.message})
    async with services.db.acquire() as conn:
        await runs_repo.add_run_warning(conn, run_id=run.run_id,
                                        warning=RENDER_FAILED + error.code)


def _ms(started: Any, finished: Any) -> int:
    return max(0, int((finished - started).total_seconds() * 1000))


__all__ = ["STAGE", "render_stage"]
