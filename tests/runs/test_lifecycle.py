"""Ending a run: status and settlement together, once, whoever ends it."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg
import pytest

from tests.billing.helpers import FAST, finish, new_user, paid_run
from trendflow.billing.ledger import get_balance
from trendflow.db.repositories import billing as billing_repo
from trendflow.db.repositories import components as rc_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.errors import InvalidStatusTransition, TimeoutExceeded
from trendflow.runs import end_run, reuse_cached


async def ledger_rows(conn: asyncpg.Connection, user: uuid.UUID) -> int:
    page = await billing_repo.ledger_page(conn, user_id=user, limit=1000, before_entry_id=None)
    return len(page)


async def test_an_ended_run_holds_nothing_and_a_second_ending_changes_nothing(
    sconn: asyncpg.Connection,
) -> None:
    user = await new_user(sconn, credits=Decimal(100))
    billed = await paid_run(sconn, user)
    run_id = billed.run.run_id
    await runs_repo.set_run_status(sconn, run_id=run_id, status="running")

    ended = await end_run(sconn, run_id=run_id, status="error",
                          error=TimeoutExceeded("the run took longer than 1 s"))
    assert ended.status == "error" and ended.error is not None
    assert ended.error["code"] == "timeout_exceeded"
    bal = await get_balance(sconn, user_id=user)
    assert (bal.balance, bal.reserved) == (Decimal(100), Decimal(0))
    rows = await ledger_rows(sconn, user)

    # A cancel arriving after the ending: the first ending wins, nothing moves twice.
    again = await end_run(sconn, run_id=run_id, status="cancelled")
    assert again.status == "error" and again.finished_at == ended.finished_at
    assert await ledger_rows(sconn, user) == rows
    assert await get_balance(sconn, user_id=user) == bal


async def test_a_queued_run_ends_ok_only_by_reusing_a_cached_run(
    sconn: asyncpg.Connection,
) -> None:
    user = await new_user(sconn, credits=Decimal(100))
    cached = (await paid_run(sconn, user, 1)).run
    await finish(sconn, cached.run_id, status="ok", components=dict.fromkeys(FAST, "ok"))
    cached = await end_run(sconn, run_id=cached.run_id, status="ok")  # settles it

    queued = (await paid_run(sconn, user, 1)).run  # the cache off: queued
    with pytest.raises(InvalidStatusTransition):  # ok without running, and without a cache
        await runs_repo.set_run_status(sconn, run_id=queued.run_id, status="ok")

    reused = await reuse_cached(sconn, run=queued, cached=cached)
    assert (reused.status, reused.stage, reused.reused_from_run_id) == (
        "ok", "reused", cached.run_id)
    comps = await rc_repo.list_run_components(sconn, run_id=reused.run_id)
    assert {c.status for c in comps} == {"ok"}
    assert (await get_balance(sconn, user_id=user)).reserved == 0  # settled in the same step

    # A run that already left the queue cannot be turned into a reuse.
    running = (await paid_run(sconn, user, 3)).run
    await runs_repo.set_run_status(sconn, run_id=running.run_id, status="running")
    with pytest.raises(InvalidStatusTransition):
        await reuse_cached(sconn, run=running, cached=cached)
