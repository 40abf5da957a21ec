"""The one place a run ends: its final status and its billing settlement, in one transaction.

Every ending goes through :func:`end_run` — a run that finished in the scheduler, one that
failed before it was claimed, a cancel (with or without a scheduler), a run timeout, and a
request served from the cache (``queued → ok`` after :func:`reuse_cached`). Calling it again
for a run that already ended changes nothing but settling once more, which converges
(:func:`~trendflow.billing.ledger.settle_run` is idempotent): the first ending wins, so a cancel
racing a finished run, or a retried ending after a crash, never charges twice nor leaves
credits held.
"""

from __future__ import annotations

import uuid
from typing import Literal

import asyncpg

from trendflow.billing.ledger import settle_run
from trendflow.db.repositories import components as rc_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.errors import TrendflowError
from trendflow.metrics import get_metrics

Ending = Literal["ok", "error", "cancelled"]


async def end_run(
    conn: asyncpg.Connection,
    *,
    run_id: uuid.UUID,
    status: Ending,
    error: TrendflowError | None = None,
    stage: str | None = None,
) -> runs_repo.Run:
    """End ``run_id`` with ``status`` (stage ``stage`` or the status) and settle its credits.

    Idempotent: a run that has already ended keeps its status (the returned row says which)
    and is only settled again. Status and settlement commit together; the status change goes
    through the runs repository's status machine.
    """
    async with conn.transaction():
        run = await runs_repo.get_run(conn, run_id=run_id, for_update=True)
        ended_now = run.status not in runs_repo.TERMINAL_STATUSES
        if ended_now:
            run = await runs_repo.set_run_status(
                conn,
                run_id=run_id,
                status=status,
                stage=stage or status,
                error=None if error is None else error.to_dict(),
            )
        await settle_run(conn, run_id=run_id)
    if ended_now:
        metrics = get_metrics()
        if error is not None:
            metrics.error(error.code)
        metrics.run_finished(status)
    return run


async def reuse_cached(
    conn: asyncpg.Connection, *, run: runs_repo.Run, cached: runs_repo.Run
) -> runs_repo.Run:
    """End the just-queued ``run`` at once with ``cached``'s results (``queued → ok``).

    Called inside the creation transaction, so the scheduler never sees the run queued. The
    components' records are copied (with a note naming the cached run); the artifacts stay
    where ``cached`` wrote them.
    """
    await runs_repo.mark_reused(
        conn, run_id=run.run_id, reused_from_run_id=cached.run_id, warnings=cached.warnings
    )
    for comp in await rc_repo.list_run_components(conn, run_id=cached.run_id):
        await rc_repo.upsert_run_component(
            conn,
            run_id=run.run_id,
            component_name=comp.component_name,
            status=comp.status,  # type: ignore[arg-type]
            required=comp.required,
            schema_version=comp.schema_version,
            producer_version=comp.producer_version,
            model=comp.model,
            started_at=comp.started_at,
            finished_at=comp.finished_at,
            duration_ms=comp.duration_ms,
            device_used=comp.device_used,
            error=comp.error,
            empty_reason=comp.empty_reason,
            notes=[f"reused from run {cached.run_id}"],
        )
    return await end_run(conn, run_id=run.run_id, status="ok", stage="reused")


__all__ = ["Ending", "end_run", "reuse_cached"]
