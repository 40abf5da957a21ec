"""Request rate limits for the cheap-to-ask, costly-to-answer routes: uploads and estimates.

Runs are limited per hour in the database (:mod:`trendflow.billing.limits`, the billing rule).
An upload (streaming, hashing and probing up to ``max_upload_mb``) and an estimate (profile
resolution and pricing queries) cost no credits, so without a limit one token could keep a
replica busy. Each is limited per user with a sliding window of ``window_s`` seconds; past the
limit the API answers ``429 rate_limited`` with ``Retry-After`` (when the oldest request in the
window leaves it).

The counters live in the replica's memory: the limit holds per API replica (the local stack runs
one; with N replicas behind a load balancer a user gets at most N × the limit), and a restarted
replica starts counting afresh. That bound is what this guards — one replica's capacity.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import deque
from collections.abc import Callable

from trendflow.errors import RateLimited


class SlidingWindowLimiter:
    """At most ``limit`` requests per user in any ``window_s`` seconds (``limit`` 0: none)."""

    def __init__(
        self, *, what: str, limit: int, window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._hits: dict[uuid.UUID, deque[float]] = {}

    def check(self, user_id: uuid.UUID) -> None:
        """Count one request of ``user_id`` or raise :class:`RateLimited` (nothing counted)."""
        now = self._clock()
        hits = self._hits.setdefault(user_id, deque())
        while hits and now - hits[0] >= self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            retry = max(1, math.ceil(self.window_s - (now - hits[0]))) if hits else math.ceil(
                self.window_s)
            raise RateLimited(
                f"at most {self.limit} {self.what} per {self.window_s:g} s; try again in "
                f"{retry} s", limit=self.limit, window_s=self.window_s, retry_after_s=retry,
                what=self.what,
            )
        hits.append(now)
        self._forget_idle(now)

    def _forget_idle(self, now: float) -> None:
        # Bounded memory: users with nothing left in the window are dropped now and then.
        if len(self._hits) > 1024:
            for user in [u for u, h in self._hits.items() if not h or now - h[-1] >= self.window_s]:
                del self._hits[user]
