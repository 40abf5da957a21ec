"""Creating a paid run: idempotency, rate limit, cache, queue, price and reserve — all in one
transaction.

:func:`create_billed_run` is what ``POST /api/runs`` calls for a user, with the request already
resolved (:func:`~trendflow.runs.request.resolve_profile`, the video's facts). In one
transaction:

1. lock the user's row (serialises this user's concurrent requests);
2. a replay of an earlier request (same ``Idempotency-Key`` and the same request fingerprint)
   returns the earlier run — nothing is counted, priced or reserved again; the same key with a
   different request is refused (409 ``idempotency_key_reused``);
3. :func:`~trendflow.billing.limits.check_rate_limit` → 429 ``rate_limited``;
4. an inline profile is saved; the cache is looked up (:func:`find_cached`);
5. :func:`~trendflow.runs.enqueue.enqueue_run` → the queued run;
6. :func:`~trendflow.billing.estimate.estimate` on the resolved config — the same function
   ``POST /api/estimate`` uses — and, with ``max_total`` (the total the user was shown), refuse
   a higher price with 409 ``price_changed``;
7. :func:`~trendflow.billing.ledger.reserve_for_run` → 402 ``insufficient_credits``;
8. a cache hit ends the run at once (:func:`~trendflow.runs.lifecycle.reuse_cached`).

Any refusal rolls the whole transaction back: no run, no ledger row, no count.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from trendflow.billing.estimate import Estimate, estimate
from trendflow.billing.ledger import reserve_for_run
from trendflow.billing.limits import RateLimits, RateStatus, check_rate_limit
from trendflow.billing.pricing import VideoParams
from trendflow.contracts.identity import PlatformId
from trendflow.db.repositories import profiles as profiles_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.db.repositories import users as users_repo
from trendflow.errors import IdempotencyConflict, PriceChanged
from trendflow.pipeline.components.base import Input
from trendflow.pipeline.components.registry import get_component
from trendflow.runs.enqueue import enqueue_run
from trendflow.runs.lifecycle import reuse_cached
from trendflow.runs.request import ResolvedProfile
from trendflow.settings import Settings


@dataclass(frozen=True, slots=True)
class BilledRun:
    run: runs_repo.Run
    created: bool  # False: an idempotent repeat of an earlier request
    estimate: Estimate | None  # None for a repeat (its reservation was made the first time)
    rate: RateStatus | None  # None for a repeat (it was counted the first time)
    reused: bool = False  # ended at once with a cached run's results


def private_inputs(profile: ResolvedProfile, source: Mapping[str, Any]) -> dict[str, Any] | None:
    """What of a run's inputs is its requester's own and read by its components: an upload's
    metadata (title, tags, description…) when an enabled component reads metadata; else None
    (the video's frames and sound, the same for everyone with the same bytes)."""
    reads_meta = any(
        Input.METADATA in get_component(c.name).INPUTS for c in profile.config.enabled
    )
    meta = source.get("meta")
    return dict(meta) if reads_meta and meta is not None else None


def check_max_total(total: Decimal, max_total: Decimal | None) -> None:
    """Refuse a price above the total the user accepted (409 ``price_changed``): at creation,
    and at the estimate of the same request."""
    if max_total is not None and total > max_total:
        raise PriceChanged(
            f"the price is now {total} credits, above the {max_total} you accepted; "
            "ask for a new estimate",
            total=str(total),
            accepted=str(max_total),
        )


async def find_cached(
    conn: asyncpg.Connection,
    *,
    profile: ResolvedProfile,
    video_id: str,
    source: Mapping[str, Any],
    ttl_days: int,
) -> runs_repo.Run | None:
    """The newest successful run of the same work within ``ttl_days`` (0: no cache).

    The same work: the same video, config and models, and the same private inputs
    (:func:`private_inputs`), so a run is never served another user's metadata-derived results.
    """
    if ttl_days <= 0:
        return None
    return await runs_repo.find_cached_run(
        conn,
        video_id=video_id,
        config_hash=profile.config_hash,
        model_signature=profile.model_signature,
        finished_after=datetime.now(UTC) - timedelta(days=ttl_days),
        source_meta=private_inputs(profile, source),
    )


async def create_billed_run(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID,
    profile: ResolvedProfile,
    platform_id: PlatformId,
    video_id: str,
    source: Mapping[str, Any],
    video: VideoParams,
    settings: Settings,
    title: str | None = None,
    idempotency_key: str | None = None,
    fingerprint: str = "",
    callback_url: str | None = None,
    max_total: Decimal | None = None,
    cache_ttl_days: int = 0,
) -> BilledRun:
    """Queue a run for ``user_id`` and reserve its price (see the module docstring).

    ``idempotency_key`` is the client's key; ``fingerprint`` what makes two requests "the
    same" (stored with the key as ``<key>#<fingerprint>``). ``cache_ttl_days`` > 0 reuses a
    fresh cached result, priced at the components' cache prices.
    """
    async with conn.transaction():
        user = await users_repo.get_user(conn, user_id=user_id, for_update=True)
        stored_key = None
        if idempotency_key is not None:
            stored_key = f"{idempotency_key}#{fingerprint}"
            earlier = await runs_repo.find_by_idempotency_key(
                conn, user_id=user_id, key_prefix=idempotency_key + "#"
            )
            if earlier is not None:  # a retried request: same answer, counted and paid once
                earlier_id, earlier_key = earlier
                if earlier_key != stored_key:
                    raise IdempotencyConflict(
                        "this Idempotency-Key was used for a different request",
                        idempotency_key=idempotency_key,
                    )
                run = await runs_repo.get_run(conn, run_id=earlier_id)
                return BilledRun(run=run, created=False, estimate=None, rate=None)
        rate = await check_rate_limit(
            conn,
            user_id=user_id,
            subscription=user.subscription,
            limits=RateLimits.from_settings(settings.billing),
        )
        if profile.to_save is not None:
            await profiles_repo.save_profile(conn, profile=profile.to_save)
        hit = await find_cached(conn, profile=profile, video_id=video_id, source=source,
                                ttl_days=cache_ttl_days)
        run, created = await enqueue_run(
            conn,
            user_id=user_id,
            profile=profile,
            platform_id=platform_id,
            video_id=video_id,
            source=source,
            title=title,
            idempotency_key=stored_key,
            callback_url=callback_url,
            priced=video,
        )
        if not created:
            return BilledRun(run=run, created=False, estimate=None, rate=rate)
        priced = await estimate(
            conn,
            profile=profile.config,
            video=video,
            settings=settings,
            reuse=hit is not None,
            with_eta=False,
        )
        check_max_total(priced.total, max_total)
        await reserve_for_run(conn, user_id=user_id, run_id=run.run_id, estimate=priced)
        if hit is not None:
            run = await reuse_cached(conn, run=run, cached=hit)
    return BilledRun(run=run, created=True, estimate=priced, rate=rate, reused=hit is not None)


__all__ = ["BilledRun", "check_max_total", "create_billed_run", "find_cached"]
