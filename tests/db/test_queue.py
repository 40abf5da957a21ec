"""The run queue: FIFO claims with SKIP LOCKED, status transitions, recovery."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tests.db.helpers import make_run
from trendflow.db.pool import Database
from trendflow.db.repositories import runs as runs_repo
from trendflow.errors import InvalidStatusTransition, RunNotFound


async def test_four_workers_claim_fifty_runs_each_exactly_once_in_fifo_order(
    db: Database,
) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    async with db.acquire() as conn:
        created = [
            await make_run(conn, video_id=f"vid{i:08d}", created_at=base + timedelta(seconds=i))
            for i in range(50)
        ]
    order = {run.run_id: i for i, run in enumerate(created)}
    claims: dict[str, list[list[uuid.UUID]]] = {}

    async def worker(name: str) -> None:
        claims[name] = []
        async with db.acquire() as conn:
            while True:
                async with conn.transaction():
                    batch = await runs_repo.claim_next_runs(conn, limit=3, worker_id=name)
                    # hold the row locks a moment so the workers really overlap
                    await asyncio.sleep(0.005)
                if not batch:
                    return
                claims[name].append([r.run_id for r in batch])

    await asyncio.gather(*(worker(f"w{i}") for i in range(4)))

    claimed = [rid for batches in claims.values() for batch in batches for rid in batch]
    assert sorted(claimed, key=order.__getitem__) == [r.run_id for r in created]
    assert len(claimed) == len(set(claimed)) == 50
    assert sum(1 for batches in claims.values() if batches) >= 2  # the work was shared
    for batches in claims.values():
        positions = [order[rid] for batch in batches for rid in batch]
        assert positions == sorted(positions), "a worker took a newer run before an older one"
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT status, worker_id, attempts, started_at FROM runs")
    assert {r["status"] for r in rows} == {"running"}
    assert all(r["worker_id"] and r["attempts"] == 1 and r["started_at"] for r in rows)


async def test_claim_skips_runs_that_are_not_queued(conn: asyncpg.Connection) -> None:
    done = await make_run(conn, video_id="aaaaaaaaaaa", status="ok")
    queued = await make_run(conn, video_id="bbbbbbbbbbb")
    claimed = await runs_repo.claim_next_runs(conn, limit=10, worker_id="w")
    assert [r.run_id for r in claimed] == [queued.run_id]
    assert (await runs_repo.get_run(conn, run_id=done.run_id)).status == "ok"
    assert await runs_repo.queue_length(conn) == 0


async def test_status_transitions(conn: asyncpg.Connection) -> None:
    run = await make_run(conn)
    with pytest.raises(InvalidStatusTransition):
        await runs_repo.set_run_status(conn, run_id=run.run_id, status="ok")
    await runs_repo.claim_next_runs(conn, limit=1, worker_id="w")
    finished = await runs_repo.set_run_status(conn, run_id=run.run_id, status="ok", stage="done")
    assert finished.status == "ok" and finished.finished_at is not None
    with pytest.raises(InvalidStatusTransition) as info:
        await runs_repo.set_run_status(conn, run_id=run.run_id, status="running")
    assert info.value.code == "invalid_status_transition"
    with pytest.raises(RunNotFound):
        await runs_repo.set_run_status(conn, run_id=uuid.uuid4(), status="running")


async def test_interrupted_runs_are_requeued(conn: asyncpg.Connection) -> None:
    run = await make_run(conn)
    await runs_repo.claim_next_runs(conn, limit=1, worker_id="dead-worker")
    assert await runs_repo.requeue_interrupted(conn, worker_id="dead-worker") == 1
    again = await runs_repo.claim_next_runs(conn, limit=1, worker_id="new-worker")
    assert [r.run_id for r in again] == [run.run_id]
    assert again[0].attempts == 2
