"""Reserve → settle → release on a real PostgreSQL: what the user's balance shows."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import asyncpg
import pytest

from trendflow.billing.audit import audit_ledger
from trendflow.billing.ledger import (
    charge_key,
    get_balance,
    get_ledger,
    refund_run,
    settle_run,
)
from trendflow.db.pool import connect, init_connection
from trendflow.db.repositories import billing as billing_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.errors import InvalidStatusTransition, PaymentRequired
from trendflow.settings import BillingSettings, Settings

from .helpers import FAST, OPTIONAL, finish, new_user, paid_run

ALL_OK = dict.fromkeys(FAST, "ok")
NO_LIMITS = Settings(billing=BillingSettings(runs_per_hour_free=1000,
                                             runs_per_hour_hard_cap=1000))


async def test_successful_run_charges_exactly_the_estimate(sconn: asyncpg.Connection) -> None:
    user = await new_user(sconn, credits=Decimal("100"))
    billed = await paid_run(sconn, user)
    assert billed.estimate is not None
    total = billed.estimate.total
    bal = await get_balance(sconn, user_id=user)
    assert (bal.balance, bal.reserved, bal.available) == (Decimal(100), total, 100 - total)

    await finish(sconn, billed.run.run_id, status="ok", components=ALL_OK)
    settled = await settle_run(sconn, run_id=billed.run.run_id)
    assert settled.total_charged == total and settled.total_released == 0
    assert settled.charged == billed.estimate.prices
    bal = await get_balance(sconn, user_id=user)
    assert (bal.balance, bal.reserved) == (100 - total, Decimal(0))
    assert await audit_ledger(sconn, unsettled_grace_s=0) == []


async def test_failed_optional_component_is_not_charged(sconn: asyncpg.Connection) -> None:
    user = await new_user(sconn, credits=Decimal("100"))
    billed = await paid_run(sconn, user)
    assert billed.estimate is not None
    await finish(sconn, billed.run.run_id, status="ok", components={**ALL_OK, OPTIONAL: "error"})
    settled = await settle_run(sconn, run_id=billed.run.run_id)
    prices = billed.estimate.prices
    assert settled.released == {OPTIONAL: prices[OPTIONAL]}
    assert settled.total_charged == billed.estimate.total - prices[OPTIONAL]
    bal = await get_balance(sconn, user_id=user)
    assert bal.balance == 100 - settled.total_charged and bal.reserved == 0


async def test_failed_required_component_refunds_everything(sconn: asyncpg.Connection) -> None:
    user = await new_user(sconn, credits=Decimal("100"))
    billed = await paid_run(sconn, user)
    comps = {**ALL_OK, "motion": "error", "shot_detection": "pending"}
    await finish(sconn, billed.run.run_id, status="error", components=comps)
    settled = await settle_run(sconn, run_id=billed.run.run_id)
    assert settled.total_charged == 0
    bal = await get_balance(sconn, user_id=user)
    assert (bal.balance, bal.reserved) == (Decimal(100), Decimal(0))


async def test_cancelled_run_pays_only_what_finished_before_the_cancel(
    sconn: asyncpg.Connection,
) -> None:
    user = await new_user(sconn, credits=Decimal("100"))
    billed = await paid_run(sconn, user)
    assert billed.estimate is not None
    done = {"metadata_features": "ok", "loudness": "empty"}
    comps = {**dict.fromkeys(FAST, "pending"), **done}
    await finish(sconn, billed.run.run_id, status="cancelled", components=comps)
    settled = await settle_run(sconn, run_id=billed.run.run_id)
    assert settled.charged == {n: billed.estimate.prices[n] for n in done}
    # A component whose finish is stamped after the cancel is not charged.
    other = await paid_run(sconn, user, 1)
    await finish(sconn, other.run.run_id, status="cancelled", components=done,
                 finished_before_end=False)
    assert (await settle_run(sconn, run_id=other.run.run_id)).total_charged == 0


async def test_reused_run_is_charged_the_cache_price(sconn: asyncpg.Connection) -> None:
    user = await new_user(sconn, credits=Decimal("100"))
    billed = await paid_run(sconn, user, reuse=True)
    assert billed.estimate is not None and billed.reused
    assert billed.estimate.total == Decimal("0.10") * len(FAST)
    # Ended ok at creation, and settled in the same transaction: charged the cache price.
    assert billed.run.status == "ok"
    bal = await get_balance(sconn, user_id=user)
    assert (bal.balance, bal.reserved) == (Decimal("100") - Decimal("0.60"), Decimal(0))
    assert not (await settle_run(sconn, run_id=billed.run.run_id)).changed


async def test_settle_is_idempotent_and_waits_for_the_end(sconn: asyncpg.Connection) -> None:
    user = await new_user(sconn, credits=Decimal("100"))
    billed = await paid_run(sconn, user)
    with pytest.raises(InvalidStatusTransition):
        await settle_run(sconn, run_id=billed.run.run_id)
    await finish(sconn, billed.run.run_id, status="ok", components=ALL_OK)
    first = await settle_run(sconn, run_id=billed.run.run_id)
    rows = await sconn.fetchval("SELECT count(*) FROM billing_ledger")
    again = await asyncio.gather(*(settle_run(sconn, run_id=billed.run.run_id)
                                   for _ in range(1)))
    assert first.changed and not again[0].changed
    assert await sconn.fetchval("SELECT count(*) FROM billing_ledger") == rows


async def test_concurrent_duplicate_settles_charge_once(seeded_url: str) -> None:
    conn = await connect(seeded_url)
    try:
        user = await new_user(conn, credits=Decimal("100"))
        billed = await paid_run(conn, user)
        await finish(conn, billed.run.run_id, status="ok", components=ALL_OK)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(seeded_url, min_size=5, max_size=5, init=init_connection)
    try:
        async def one() -> Decimal:
            async with pool.acquire() as c:
                return (await settle_run(c, run_id=billed.run.run_id)).total_charged

        charged = await asyncio.gather(*(one() for _ in range(5)))
        assert billed.estimate is not None
        assert sorted(charged) == [0, 0, 0, 0, billed.estimate.total]
        async with pool.acquire() as c:
            assert await audit_ledger(c, unsettled_grace_s=0) == []
    finally:
        await pool.close()


async def test_settle_after_a_crash_between_writes_reaches_the_same_end(
    seeded_url: str,
) -> None:
    conn = await connect(seeded_url)
    try:
        user = await new_user(conn, credits=Decimal("100"))
        billed = await paid_run(conn, user)
        run_id = billed.run.run_id
        await finish(conn, run_id, status="ok", components={**ALL_OK, OPTIONAL: "error"})

        # 1. The settling process dies with its transaction open (its socket closes without a
        #    commit): the server rolls the transaction back.
        doomed = await connect(seeded_url)
        tx = doomed.transaction()
        await tx.start()
        await settle_run(doomed, run_id=run_id)
        pid = doomed.get_server_pid()
        doomed.terminate()
        for _ in range(100):
            if not await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
                break
            await asyncio.sleep(0.05)
        assert (await get_balance(conn, user_id=user)).reserved == billed.estimate.total  # type: ignore[union-attr]

        # 2. A settlement written by an older process, one row per transaction, that stopped
        #    after its first charge.
        await billing_repo.move(
            conn, user_id=user, kind="charge", amount=billed.estimate.prices["color_stats"],  # type: ignore[union-attr]
            run_id=run_id, component_name="color_stats",
            idempotency_key=charge_key(run_id, "color_stats"),
        )
        resumed = await settle_run(conn, run_id=run_id)
        assert "color_stats" not in resumed.charged
        bal = await get_balance(conn, user_id=user)
        prices = billed.estimate.prices  # type: ignore[union-attr]
        want = Decimal(100) - (billed.estimate.total - prices[OPTIONAL])  # type: ignore[union-attr]
        assert (bal.balance, bal.reserved) == (want, Decimal(0))
        assert not (await settle_run(conn, run_id=run_id)).changed
        assert await audit_ledger(conn, unsettled_grace_s=0) == []
    finally:
        await conn.close()


async def test_hundred_concurrent_creations_accept_exactly_what_the_balance_covers(
    seeded_url: str,
) -> None:
    conn = await connect(seeded_url)
    try:
        probe_user = await new_user(conn, credits=Decimal("100"))
        probe = await paid_run(conn, probe_user, 999, settings=NO_LIMITS)
        assert probe.estimate is not None
        price = probe.estimate.total
        user = await new_user(conn, credits=price * 10)
    finally:
        await conn.close()

    pool = await asyncpg.create_pool(seeded_url, min_size=20, max_size=20, init=init_connection)
    try:
        async def create(n: int) -> str:
            async with pool.acquire() as c:
                try:
                    await paid_run(c, user, n, settings=NO_LIMITS)
                except PaymentRequired as exc:
                    assert Decimal(exc.details["shortfall"]) == price
                    return "402"
                return "accepted"

        outcomes = await asyncio.gather(*(create(n) for n in range(100)))
        assert outcomes.count("accepted") == 10 and outcomes.count("402") == 90
        async with pool.acquire() as c:
            bal = await get_balance(c, user_id=user)
            assert (bal.balance, bal.reserved, bal.available) == (price * 10, price * 10, 0)
            runs = await runs_repo.list_runs(c, user_id=user, limit=200)
            assert len(runs) == 10  # refused requests left no run behind
            for run in runs:
                await finish(c, run.run_id, status="ok", components=ALL_OK)
                await settle_run(c, run_id=run.run_id)
            bal = await get_balance(c, user_id=user)
            assert (bal.balance, bal.reserved) == (Decimal(0), Decimal(0))
            assert await audit_ledger(c, unsettled_grace_s=0) == []
    finally:
        await pool.close()


async def test_ledger_pages_and_admin_refund(sconn: asyncpg.Connection) -> None:
    user = await new_user(sconn, credits=Decimal("100"))
    billed = await paid_run(sconn, user)
    await finish(sconn, billed.run.run_id, status="ok", components=ALL_OK)
    await settle_run(sconn, run_id=billed.run.run_id)
    first = await get_ledger(sconn, user_id=user, limit=5)
    assert len(first.entries) == 5 and first.next_before is not None
    rest = await get_ledger(sconn, user_id=user, limit=100, before_entry_id=first.next_before)
    entries = first.entries + rest.entries
    assert rest.next_before is None
    assert len(entries) == 1 + 2 * len(FAST)  # top-up, a reserve and a charge per component
    assert [e.entry_id for e in entries] == sorted((e.entry_id for e in entries), reverse=True)
    assert entries[-1].kind == "topup" and "test credits" in entries[-1].note

    refunded = await refund_run(sconn, run_id=billed.run.run_id, reason="bad result",
                                actor="admin@example.com")
    assert billed.estimate is not None and sum(refunded.values()) == billed.estimate.total
    assert (await get_balance(sconn, user_id=user)).balance == Decimal(100)
    assert await refund_run(sconn, run_id=billed.run.run_id, reason="again",
                            actor="admin@example.com") == {}
    assert await audit_ledger(sconn, unsettled_grace_s=0) == []


async def test_audit_reports_tampering_and_unsettled_runs(sconn: asyncpg.Connection) -> None:
    user = await new_user(sconn, credits=Decimal("100"))
    billed = await paid_run(sconn, user)
    await finish(sconn, billed.run.run_id, status="ok", components=ALL_OK)
    problems = await audit_ledger(sconn, unsettled_grace_s=0)
    assert len(problems) == len(FAST) and all("not settled" in p for p in problems)
    await settle_run(sconn, run_id=billed.run.run_id)
    await sconn.execute("UPDATE users SET balance = balance + 5 WHERE user_id = $1", user)
    problems = await audit_ledger(sconn, unsettled_grace_s=0)
    assert any(f"user {user}: balance" in p for p in problems)
    assert any("newest ledger row" in p for p in problems)


async def test_unknown_run_cannot_be_settled(sconn: asyncpg.Connection) -> None:
    from trendflow.errors import RunNotFound

    with pytest.raises(RunNotFound):
        await settle_run(sconn, run_id=uuid.uuid4())
