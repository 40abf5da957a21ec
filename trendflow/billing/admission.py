"""Creating a paid run: rate limit, queue, price and reserve — all in one transaction.

:func:`create_billed_run` is what ``POST /api/runs`` calls for a user. In one transaction:

1. lock the user's row (serialises this user's concurrent requests);
2. :func:`~trendflow.billing.limits.check_rate_limit` → 429 ``rate_limited``;
3. :func:`~trendflow.actors.enqueue.enqueue_run` → the queued run. A repeat of an earlier
   request (same ``Idempotency-Key``) returns the earlier run before step 2: nothing is counted,
   priced or reserved again;
4. :func:`~trendflow.billing.estimate.estimate` on the profile config pinned to the run — the
   same function ``POST /api/estimate`` uses — and, with ``max_total`` (the total the user was
   shown), refuse a higher price with 409 ``price_changed``;
5. :func:`~trendflow.billing.ledger.reserve_for_run` → 402 ``insufficient_credits``.

Any refusal rolls the whole transaction back: no run, no ledger row, no count.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from trendflow.actors.enqueue import enqueue_run
from trendflow.billing.estimate import Estimate, check_duration, estimate
from trendflow.billing.ledger import reserve_for_run
from trendflow.billing.limits import RateLimits, RateStatus, check_rate_limit
from trendflow.billing.pricing import VideoParams
from trendflow.contracts.identity import PlatformId
from trendflow.contracts.profile import ProfileConfig
from trendflow.db.repositories import billing as billing_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.db.repositories import users as users_repo
from trendflow.errors import PriceChanged
from trendflow.settings import Settings, get_settings


@dataclass(frozen=True, slots=True)
class BilledRun:
    run: runs_repo.Run
    created: bool  # False: an idempotent repeat of an earlier request
    estimate: Estimate | None  # None for a repeat (its reservation was made the first time)
    rate: RateStatus | None  # None for a repeat (it was counted the first time)


async def create_billed_run(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID,
    profile_id: str,
    platform_id: PlatformId,
    video_id: str,
    source: Mapping[str, Any],
    video: VideoParams,
    settings: Settings | None = None,
    title: str | None = None,
    idempotency_key: str | None = None,
    callback_url: str | None = None,
    max_total: Decimal | None = None,
    reuse: bool = False,
) -> BilledRun:
    """Queue a run for ``user_id`` and reserve its price (see the module docstring).

    ``reuse=True`` prices every component at its cache price (the API found a cached result).
    """
    settings = settings or get_settings()
    check_duration(video, settings)
    async with conn.transaction():
        user = await users_repo.get_user(conn, user_id=user_id, for_update=True)
        if idempotency_key is not None:
            earlier = await billing_repo.run_by_idempotency_key(
                conn, user_id=user_id, idempotency_key=idempotency_key
            )
            if earlier is not None:  # a retried request: same answer, counted and paid once
                run = await runs_repo.get_run(conn, run_id=earlier)
                return BilledRun(run=run, created=False, estimate=None, rate=None)
        rate = await check_rate_limit(
            conn,
            user_id=user_id,
            subscription=user.subscription,
            limits=RateLimits.from_settings(settings.billing),
        )
        run, created = await enqueue_run(
            conn,
            user_id=user_id,
            profile_id=profile_id,
            platform_id=platform_id,
            video_id=video_id,
            source=source,
            title=title,
            idempotency_key=idempotency_key,
            callback_url=callback_url,
        )
        if not created:
            return BilledRun(run=run, created=False, estimate=None, rate=rate)
        priced = await estimate(
            conn,
            profile=ProfileConfig.parse(run.profile_config),
            video=video,
            user_id=user_id,
            settings=settings,
            reuse=reuse,
            with_eta=False,
        )
        if max_total is not None and priced.total > max_total:
            raise PriceChanged(
                f"the price is now {priced.total} credits, above the {max_total} you accepted; "
                "ask for a new estimate",
                total=str(priced.total),
                accepted=str(max_total),
            )
        await reserve_for_run(conn, user_id=user_id, run_id=run.run_id, estimate=priced)
    return BilledRun(run=run, created=True, estimate=priced, rate=rate)


__all__ = ["BilledRun", "create_billed_run"]
