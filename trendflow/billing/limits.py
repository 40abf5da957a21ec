"""Runs per user per hour: free 5, premium 50, nobody more than 100 (DESIGN.md §9).

A sliding window over the ``runs`` table: a run counts for ``window_s`` seconds (default one
hour) after its ``created_at``, whatever became of it — queued, finished, failed, cancelled, or
served from the cache (a cached run still takes a request slot and is billed its cache price).
Idempotent repeats of a request (same ``Idempotency-Key``) create no run and are not counted.
Runs without a user (the system account of bulk jobs) are not limited.

:func:`check_rate_limit` runs inside the transaction that creates the run, after taking the
user's row lock (:func:`trendflow.db.repositories.billing.lock_user`): concurrent requests of one
user are serialised, so the count cannot be raced past the limit. ``retry_after_s`` is when the
oldest run that keeps the user at the limit leaves the window (rounded up to a whole second).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

import asyncpg

from trendflow.db.repositories import billing as billing_repo
from trendflow.errors import ConfigError, RateLimited
from trendflow.settings import BillingSettings


@dataclass(frozen=True, slots=True)
class RateLimits:
    free: int
    premium: int
    hard_cap: int
    window_s: float

    @classmethod
    def from_settings(cls, billing: BillingSettings) -> RateLimits:
        return cls(
            free=billing.runs_per_hour_free,
            premium=billing.runs_per_hour_premium,
            hard_cap=billing.runs_per_hour_hard_cap,
            window_s=billing.rate_window_s,
        )

    def limit_for(self, subscription: str) -> int:
        """The subscription's limit, never above the hard cap."""
        match subscription:
            case "free":
                tier = self.free
            case "premium":
                tier = self.premium
            case _:
                raise ConfigError(
                    f"no rate limit for subscription {subscription!r}", subscription=subscription
                )
        return min(tier, self.hard_cap)


@dataclass(frozen=True, slots=True)
class RateStatus:
    """Where the user stands after this request was admitted."""

    limit: int
    used: int  # runs in the window, this one not included
    window_s: float

    @property
    def remaining(self) -> int:
        """Runs the user may still start in the window, this one not yet counted."""
        return max(self.limit - self.used, 0)


async def check_rate_limit(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID,
    subscription: str,
    limits: RateLimits,
) -> RateStatus:
    """Admit one more run for the user or raise :class:`RateLimited` (429, ``retry_after_s``).

    Call it inside the creating transaction; it takes the user's row lock itself.
    """
    if not conn.is_in_transaction():
        raise ConfigError(
            "check_rate_limit must run inside the transaction that creates the run",
            user_id=str(user_id),
        )
    limit = limits.limit_for(subscription)
    await billing_repo.lock_user(conn, user_id=user_id)
    times = await billing_repo.runs_since(conn, user_id=user_id, window_s=limits.window_s)
    if len(times) < limit:
        return RateStatus(limit=limit, used=len(times), window_s=limits.window_s)
    now = await billing_repo.db_now(conn)
    if limit == 0:
        retry_after = limits.window_s
    else:
        # After this run leaves the window the user is one below the limit again.
        frees_up = times[len(times) - limit]
        retry_after = (frees_up - now).total_seconds() + limits.window_s
    retry_after_s = max(1, math.ceil(retry_after))
    raise RateLimited(
        f"{subscription} accounts may start {limit} runs per {limits.window_s / 3600:g} h; "
        f"try again in {retry_after_s} s",
        limit=limit,
        used=len(times),
        window_s=limits.window_s,
        retry_after_s=retry_after_s,
        subscription=subscription,
    )


__all__ = ["RateLimits", "RateStatus", "check_rate_limit"]
