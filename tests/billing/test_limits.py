"""Runs per hour: free 5, premium 50, nobody above the hard cap; Retry-After is exact."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg
import pytest

from trendflow.billing.ledger import get_balance
from trendflow.billing.limits import RateLimits
from trendflow.errors import RateLimited
from trendflow.settings import BillingSettings, Settings

from .helpers import new_user, paid_run, video_id


async def _age_runs(conn: asyncpg.Connection, user: uuid.UUID, minutes: float) -> None:
    await conn.execute(
        "UPDATE runs SET created_at = created_at - make_interval(secs => $2) WHERE user_id = $1",
        user,
        minutes * 60,
    )


async def _bulk_runs(conn: asyncpg.Connection, user: uuid.UUID, n: int) -> None:
    """``n`` runs created just now (the rate limit counts rows; how they were made is moot)."""
    await conn.execute(
        "INSERT INTO videos (platform_id, video_id) VALUES ('youtube', 'bulk0000000') "
        "ON CONFLICT DO NOTHING"
    )
    await conn.executemany(
        "INSERT INTO runs (run_id, platform_id, video_id, user_id, profile_id, config_hash, "
        "sampling_policy_version, dataprocessor_version, model_signature, status) "
        "VALUES ($1, 'youtube', 'bulk0000000', $2, 'billing', repeat('a', 64), 'v', '0', 'm', "
        "'ok')",
        [(uuid.uuid4(), user) for _ in range(n)],
    )


async def test_free_tier_gets_five_runs_an_hour(sconn: asyncpg.Connection) -> None:
    user = await new_user(sconn, credits=Decimal("100"))
    for n in range(5):
        billed = await paid_run(sconn, user, n)
        assert billed.rate.limit == 5 and billed.rate.used == n
    reserved = (await get_balance(sconn, user_id=user)).reserved
    with pytest.raises(RateLimited) as err:
        await paid_run(sconn, user, 5)
    assert err.value.status == 429 and err.value.details["limit"] == 5
    assert 3590 <= err.value.details["retry_after_s"] <= 3600
    # The refused request left nothing behind.
    assert (await get_balance(sconn, user_id=user)).reserved == reserved
    assert await sconn.fetchval("SELECT count(*) FROM runs WHERE user_id = $1", user) == 5


async def test_window_slides_and_retry_after_points_at_the_oldest_run(
    sconn: asyncpg.Connection,
) -> None:
    user = await new_user(sconn, credits=Decimal("100"))
    await paid_run(sconn, user, 0)
    await _age_runs(sconn, user, 50)  # the first run is 50 minutes old
    for n in range(1, 5):
        await paid_run(sconn, user, n)
    with pytest.raises(RateLimited) as err:
        await paid_run(sconn, user, 5)
    assert 598 <= err.value.details["retry_after_s"] <= 600  # it leaves the window in 10 min
    await _age_runs(sconn, user, 10.5)  # ... and now it has
    billed = await paid_run(sconn, user, 6)
    assert billed.rate.used == 4


async def test_premium_tier_and_the_hard_cap(sconn: asyncpg.Connection) -> None:
    premium = await new_user(sconn, credits=Decimal("100"), subscription="premium")
    await _bulk_runs(sconn, premium, 49)
    assert (await paid_run(sconn, premium, 1)).rate.limit == 50
    with pytest.raises(RateLimited) as err:
        await paid_run(sconn, premium, 2)
    assert err.value.details["limit"] == 50

    # A generous premium plan still stops at the hard cap of 100.
    generous = Settings(billing=BillingSettings(runs_per_hour_premium=500))
    assert RateLimits.from_settings(generous.billing).limit_for("premium") == 100
    await _bulk_runs(sconn, premium, 49)
    await paid_run(sconn, premium, 3, settings=generous)  # the 100th run this hour
    with pytest.raises(RateLimited) as err:
        await paid_run(sconn, premium, 4, settings=generous)
    assert err.value.details["limit"] == 100
    assert 3590 <= err.value.details["retry_after_s"] <= 3600


async def test_cached_runs_count_and_idempotent_repeats_do_not(
    sconn: asyncpg.Connection,
) -> None:
    user = await new_user(sconn, credits=Decimal("100"))
    for n in range(4):
        await paid_run(sconn, user, n, reuse=True)
    first = await paid_run(sconn, user, 4, idempotency_key="req-1")
    repeat = await paid_run(sconn, user, 4, idempotency_key="req-1")
    assert first.created and not repeat.created and repeat.run.run_id == first.run.run_id
    with pytest.raises(RateLimited):
        await paid_run(sconn, user, 5, reuse=True)
    assert video_id(5) not in {
        r["video_id"] for r in await sconn.fetch("SELECT video_id FROM runs WHERE user_id = $1",
                                                 user)
    }  # (the cached run paid_run leaves for it to reuse belongs to no user)
