"""A run is never left without an owner: a store failing at the last write, a run whose
execution is gone (real Ray, real PostgreSQL, the real local store)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import ray

from tests.actors.conftest import PROFILE_ID, Runtime
from tests.billing.helpers import new_user
from trendflow.actors.execution import RunExecution, RunServices
from trendflow.actors.pools import Pools
from trendflow.billing.ledger import get_balance
from trendflow.billing.pricing import VideoParams
from trendflow.contracts.keys import manifest_key
from trendflow.contracts.manifest import load_manifest
from trendflow.db.pool import open_database
from trendflow.db.repositories import runs as runs_repo
from trendflow.errors import StorageError
from trendflow.media import synth
from trendflow.pipeline.types import VideoMeta
from trendflow.runs.admission import create_billed_run
from trendflow.runs.request import resolve_profile
from trendflow.runs.sources import upload_source
from trendflow.settings import Settings
from trendflow.storage.base import ResultStore
from trendflow.storage.factory import open_store
from trendflow.storage.local import LocalStore

CREDITS = Decimal(100)


def _with(settings: Settings, **runtime: Any) -> Settings:
    return settings.model_copy(update={"runtime": settings.runtime.model_copy(update=runtime)})


class FinalWriteFails(LocalStore):
    """The local store, refusing (``fails`` times, or always) to write a run's final manifest
    — the one that records its ending — as a full or revoked disk does."""

    def __init__(self, root: Path, fails: int | None) -> None:
        super().__init__(root)
        self.fails, self.refused = fails, 0

    async def put_bytes(self, key: str, data: bytes) -> Any:
        final = key.endswith("manifest.json") and json.loads(data)["run"]["status"] in (
            runs_repo.TERMINAL_STATUSES)
        if final and (self.fails is None or self.refused < self.fails):
            self.refused += 1
            raise StorageError(f"local store: cannot write {key!r}: Operation not permitted")
        return await super().put_bytes(key, data)


async def paid_run(runtime: Runtime, *, claim_as: str | None = None,
                   priced_duration_s: float | None = None) -> tuple[uuid.UUID, str]:
    """A user with credits and their paid, queued run of the clip (priced for its duration, or
    ``priced_duration_s``); with ``claim_as``, claimed in the same transaction by a scheduler
    that is not there (no scheduler ever sees it queued)."""
    clip: synth.Clip = runtime.clip
    async with runtime.pool.acquire() as conn:
        user = await new_user(conn, credits=CREDITS)
        async with conn.transaction():
            billed = await create_billed_run(
                conn, user_id=user,
                profile=await resolve_profile(conn, user_id=user, profile_id=PROFILE_ID),
                platform_id="upload", video_id="up-" + uuid.uuid4().hex[:16],
                source=upload_source(runtime.upload, VideoMeta(title="my clip")),
                video=VideoParams(duration_s=priced_duration_s or clip.duration_s,
                                  width=clip.width or 160,
                                  height=clip.height or 96),
                settings=runtime.settings,
            )
            if claim_as is not None:
                [claimed] = await runs_repo.claim_next_runs(conn, limit=1, worker_id=claim_as)
                assert claimed.run_id == billed.run.run_id
    assert (await _reserved(runtime, user)) > 0
    return user, str(billed.run.run_id)


async def _reserved(runtime: Runtime, user: uuid.UUID) -> Decimal:
    async with runtime.pool.acquire() as conn:
        return (await get_balance(conn, user_id=user)).reserved


async def execute_paid_run(runtime: Runtime, store: ResultStore,
                           priced_duration_s: float | None = None
                           ) -> tuple[uuid.UUID, runs_repo.Run]:
    """Claim and execute one paid run (:func:`paid_run`) as the scheduler does, on real pools,
    with ``store``; the run as it ended."""
    user, run_id = await paid_run(runtime, priced_duration_s=priced_duration_s)
    db = await open_database(runtime.settings, migrate=False)
    pools = Pools.start(runtime.settings, uuid.uuid4().hex[:8])
    try:
        async with db.acquire() as conn:
            [run] = await runs_repo.claim_next_runs(conn, limit=1, worker_id="test/ending")
        execution = RunExecution(
            RunServices(db=db, store=store, pools=pools, settings=runtime.settings,
                        segment_starts={}), run)
        try:
            await execution.execute()
        finally:
            await execution.release()
    finally:
        for actor in [*pools.segmenters, *pools.cpu, *pools.gpu.values()]:
            ray.kill(actor, no_restart=True)
        await db.close()
    return user, (await runtime.runs([run_id]))[run_id]


async def test_a_store_failing_at_the_final_write_ends_the_run_storage_unavailable(
    runtime: Runtime,
) -> None:
    store = FinalWriteFails(runtime.settings.store_root, fails=None)
    user, run = await execute_paid_run(runtime, store)
    assert store.refused == runtime.settings.runtime.store_retry_attempts + 1  # retried first
    assert run.status == "error" and run.finished_at is not None
    assert run.error is not None and run.error["code"] == "storage_unavailable"
    assert await _reserved(runtime, user) == 0  # settled: nothing stays held


async def test_a_store_failing_briefly_at_the_final_write_is_retried_and_the_run_ends_ok(
    runtime: Runtime,
) -> None:
    store = FinalWriteFails(runtime.settings.store_root, fails=2)
    user, run = await execute_paid_run(runtime, store)
    assert store.refused == 2
    assert run.status == "ok", run.error
    assert await _reserved(runtime, user) == 0
    async with runtime.pool.acquire() as conn:
        assert (await get_balance(conn, user_id=user)).balance < CREDITS  # charged
    manifest = await load_manifest(
        open_store(runtime.settings), manifest_key(run.platform_id, run.video_id, str(run.run_id)))
    assert manifest.run.status == "ok"  # the manifest and the database agree


async def test_a_running_run_whose_execution_is_gone_is_requeued_by_the_watchdog(
    runtime: Runtime, start_scheduler: Callable[[Settings], Any]
) -> None:
    settings = _with(runtime.settings, heartbeat_interval_s=0.2, heartbeat_timeout_s=1.5)
    start_scheduler(settings)
    user, run_id = await paid_run(runtime, claim_as="trendflow-scheduler/gone")
    # No execution holds it; the live scheduler's watchdog takes it once its heartbeat is stale.
    run = (await runtime.wait([run_id], timeout_s=90))[run_id]
    assert run.status == "ok", run.error
    assert run.attempts == 2  # claimed by the gone scheduler, then once more
    assert await _reserved(runtime, user) == 0


async def test_a_run_losing_its_execution_too_often_fails_execution_lost_and_is_settled(
    runtime: Runtime, start_scheduler: Callable[[Settings], Any]
) -> None:
    settings = _with(runtime.settings, heartbeat_interval_s=0.2, heartbeat_timeout_s=1.0,
                     run_max_attempts=1)
    start_scheduler(settings)
    user, run_id = await paid_run(runtime, claim_as="trendflow-scheduler/gone")
    run = (await runtime.wait([run_id], timeout_s=30))[run_id]
    assert run.status == "error" and run.error is not None
    assert run.error["code"] == "execution_lost"
    assert await _reserved(runtime, user) == 0
