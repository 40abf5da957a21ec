"""The scheduler's watchdog: no ``running`` run is left without an execution.

Every ``runtime.heartbeat_interval_s`` the scheduler refreshes the heartbeat of the runs it
executes (:func:`beat`) and sweeps (:func:`sweep`): a ``running`` run whose heartbeat is older
than ``runtime.heartbeat_timeout_s`` has lost its execution (it crashed before it could end the
run, the database was unreachable at its ending, its scheduler died without a restart). It goes
back to the queue, or, once it has been claimed ``runtime.run_max_attempts`` times, ends
``error`` with ``execution_lost`` through :func:`trendflow.runs.end_run` (credits settled) and
its stored manifest is closed to match. Several schedulers may sweep at once: a run is locked
(``SKIP LOCKED``) by the one that takes it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection

from trendflow.actors.ending import close_stored_manifest
from trendflow.db.pool import Database
from trendflow.db.repositories import runs as runs_repo
from trendflow.errors import ExecutionLost, StorageError
from trendflow.runs import end_run
from trendflow.settings import RuntimeSettings
from trendflow.storage.base import ResultStore

log = logging.getLogger(__name__)


async def beat(db: Database, *, worker_id: str, run_ids: Collection[str]) -> set[str]:
    """Refresh the heartbeat of the runs this scheduler executes; returns those no longer its
    own (ended or re-queued meanwhile by someone else): their executions must stop."""
    if not run_ids:
        return set()
    ids = [uuid.UUID(r) for r in run_ids]
    async with db.acquire() as conn:
        ours = await runs_repo.beat_runs(conn, worker_id=worker_id, run_ids=ids)
    return {str(i) for i in ids if i not in ours}


async def sweep(
    db: Database, store: ResultStore, rt: RuntimeSettings, *, active: Collection[str]
) -> tuple[list[str], list[str]]:
    """Re-queue or fail the stale ``running`` runs (not in ``active``); returns both lists."""
    requeued: list[str] = []
    failed: list[runs_repo.Run] = []
    async with db.acquire() as conn, conn.transaction():
        stale = await runs_repo.lock_stale_runs(
            conn, timeout_s=rt.heartbeat_timeout_s, exclude=[uuid.UUID(r) for r in active]
        )
        for run in stale:
            if run.attempts < rt.run_max_attempts:
                await runs_repo.set_run_status(conn, run_id=run.run_id, status="queued")
                requeued.append(str(run.run_id))
                continue
            error = ExecutionLost(
                f"run {run.run_id} lost its execution (no heartbeat for "
                f"{rt.heartbeat_timeout_s:g} s) after {run.attempts} attempts",
                run_id=str(run.run_id),
                attempts=run.attempts,
            )
            failed.append(await end_run(conn, run_id=run.run_id, status="error", error=error))
    for run_id in requeued:
        log.warning("run %s had no heartbeat for %g s: its execution is gone; re-queued",
                    run_id, rt.heartbeat_timeout_s)
    for run in failed:
        log.error("run %s had no heartbeat for %g s after %d attempts; ended execution_lost",
                  run.run_id, rt.heartbeat_timeout_s, run.attempts)
        try:
            await close_stored_manifest(db, store, rt, run)
        except StorageError as exc:
            log.error("run %s: its manifest could not be closed: %s", run.run_id, exc)
    return requeued, [str(r.run_id) for r in failed]


__all__ = ["beat", "sweep"]
