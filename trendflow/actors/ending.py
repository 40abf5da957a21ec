"""How a run's execution writes its last state even when the store or the database fails.

Every manifest write of a run goes through :func:`save_retrying`: a failing store is retried
(``runtime.store_retry_attempts`` times, with the retry backoff) and then reported as
:class:`~trendflow.errors.StorageUnavailable`. :func:`end_execution` closes the manifest and then
ends the run through :func:`trendflow.runs.end_run` in every case: a run whose last manifest
write fails ends ``error`` with ``storage_unavailable`` (a cancel stays ``cancelled``) and its
credits are settled all the same. The database is retried too; a run that still cannot be ended
keeps its ``running`` row without a heartbeat, and the scheduler's watchdog
(:mod:`trendflow.actors.watchdog`) takes it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import asyncpg

from trendflow.actors.policy import backoff_s
from trendflow.contracts.keys import manifest_key
from trendflow.contracts.manifest import Manifest, RunError, load_manifest, save_manifest
from trendflow.db.pool import Database
from trendflow.db.repositories import components as rc_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.errors import (
    ArtifactNotFound,
    DatabaseError,
    StorageError,
    StorageUnavailable,
    TrendflowError,
)
from trendflow.pipeline.execution import end_manifest
from trendflow.runs import Ending, end_run
from trendflow.settings import RuntimeSettings
from trendflow.storage.base import ResultStore

log = logging.getLogger(__name__)

# What a lost or restarting database raises (asyncpg's connection errors, a refused socket).
_DB_TRANSIENT = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    OSError,
    TimeoutError,
    DatabaseError,
)


async def save_retrying(store: ResultStore, manifest: Manifest, rt: RuntimeSettings) -> None:
    """Write the manifest; a failing store is retried, then :class:`StorageUnavailable`."""
    for attempt in range(rt.store_retry_attempts + 1):
        try:
            await save_manifest(store, manifest)
            return
        except StorageError as exc:
            if attempt == rt.store_retry_attempts:
                raise StorageUnavailable(
                    f"the result store failed {attempt + 1} times to write the manifest of run "
                    f"{manifest.run.run_id}: {exc.message}",
                    run_id=manifest.run.run_id,
                    store_error=exc.code,
                ) from exc
            log.warning("writing the manifest of run %s failed (%s); retrying",
                        manifest.run.run_id, exc.message)
            await asyncio.sleep(backoff_s(attempt, rt))


async def record_closed(db: Database, run_id: uuid.UUID, manifest: Manifest,
                        names: list[str]) -> None:
    """Index the components the ending closed (their ``run_components`` rows)."""
    if not names:
        return
    async with db.acquire() as conn:
        for name in names:
            await rc_repo.record_component(conn, run_id=run_id, name=name,
                                           record=manifest.components[name])


async def end_execution(
    db: Database,
    store: ResultStore,
    rt: RuntimeSettings,
    manifest: Manifest | None,
    run_id: uuid.UUID,
    status: Ending,
    error: TrendflowError | None,
) -> Ending:
    """Close the manifest (if the run has one), then end the run; returns the status it got.

    A manifest that cannot be written makes an ``ok`` or ``error`` run end ``error`` with
    ``storage_unavailable``; the database is the record of that ending.
    """
    if manifest is not None:
        info = None if error is None else RunError.of(error)
        closed = end_manifest(manifest, status, info)
        try:
            await save_retrying(store, manifest, rt)
        except StorageUnavailable as exc:
            log.error("run %s: %s; ending it without its manifest", run_id, exc.message)
            if status != "cancelled":
                status, error = "error", exc
        try:
            await record_closed(db, run_id, manifest, closed)
        except _DB_TRANSIENT:
            log.warning("run %s: its closed components could not be indexed", run_id,
                        exc_info=True)
    await end_run_retrying(db, rt, run_id=run_id, status=status, error=error)
    return status


async def end_run_retrying(
    db: Database,
    rt: RuntimeSettings,
    *,
    run_id: uuid.UUID,
    status: Ending,
    error: TrendflowError | None = None,
) -> runs_repo.Run:
    """:func:`end_run` with a lost database retried (``runtime.retry_attempts`` times)."""
    for attempt in range(rt.retry_attempts + 1):
        try:
            async with db.acquire() as conn:
                return await end_run(conn, run_id=run_id, status=status, error=error)
        except _DB_TRANSIENT:
            if attempt == rt.retry_attempts:
                raise
            log.warning("ending run %s failed (database); retrying", run_id, exc_info=True)
            await asyncio.sleep(backoff_s(attempt, rt))
    raise AssertionError("unreachable")


async def close_stored_manifest(
    db: Database, store: ResultStore, rt: RuntimeSettings, run: runs_repo.Run
) -> None:
    """Bring an ended run's stored manifest (if any) to the ending the database recorded
    without an execution (a cancel, the watchdog): the manifest then says what the row says."""
    if run.status not in runs_repo.TERMINAL_STATUSES:
        return
    key = manifest_key(run.platform_id, run.video_id, str(run.run_id))
    try:
        manifest = await load_manifest(store, key)
    except ArtifactNotFound:
        return  # the run never started: there is no manifest
    if manifest.run.status == run.status:
        return
    info = None if not run.error else RunError.from_row(run.error)
    closed = end_manifest(manifest, run.status, info)
    await save_retrying(store, manifest, rt)
    await record_closed(db, run.run_id, manifest, closed)


__all__ = ["close_stored_manifest", "end_execution", "end_run_retrying", "save_retrying"]
