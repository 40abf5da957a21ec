"""What the routes share: settings, the database pool, the result store, the scheduler link.

One :class:`ApiContext` per app, opened in the app's lifespan and stored on ``app.state``.
The scheduler is reached through :class:`SchedulerLink`: the Ray implementation talks to the
named scheduler actor; an app built without Ray (tests, tools) has none, and the routes that
need it say so (``503 service_unavailable``) instead of pretending.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from trendflow.api.throttle import SlidingWindowLimiter
from trendflow.api.youtube import YoutubeMetadata
from trendflow.db import Database
from trendflow.errors import ServiceUnavailable
from trendflow.pipeline.fetch import Extract, extract_info
from trendflow.settings import Settings
from trendflow.storage.base import ResultStore
from trendflow.triton.readiness import ModelServingProbe


class SchedulerLink(Protocol):
    """The API's view of the scheduler actor."""

    async def wake(self) -> None:
        """New runs are queued: plan now rather than at the next poll."""
        ...

    async def cancel(self, run_id: str) -> str:
        """Cancel a queued or running run; its final status."""
        ...

    async def describe(self) -> dict[str, Any]:
        """The scheduler's own report (health)."""
        ...


class RaySchedulerLink:
    """:class:`SchedulerLink` over the named, detached scheduler actor of this Ray cluster."""

    def __init__(self, settings: Settings, *, timeout_s: float = 10.0) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._handle: Any = None

    def _actor(self) -> Any:
        from trendflow.actors.scheduler import get_scheduler

        if self._handle is None:
            self._handle = get_scheduler(self._settings)
        return self._handle

    async def _call(self, method: str, *args: Any, timeout_s: float | None = None) -> Any:
        import ray

        try:
            ref = getattr(self._actor(), method).remote(*args)
            return await asyncio.wait_for(ref, timeout_s or self._timeout_s)
        except (ray.exceptions.RayActorError, TimeoutError) as exc:
            self._handle = None  # look the actor up again next time (it may have restarted)
            raise ServiceUnavailable(
                f"the scheduler did not answer {method}: {type(exc).__name__}"
            ) from exc

    async def wake(self) -> None:
        await self._call("wake")

    async def cancel(self, run_id: str) -> str:
        return str(await self._call("cancel", run_id, timeout_s=70.0))

    async def describe(self) -> dict[str, Any]:
        return dict(await self._call("describe"))


@dataclass
class ApiContext:
    """Shared state of one app instance (one Serve replica)."""

    settings: Settings
    db: Database
    store: ResultStore
    scheduler: SchedulerLink | None = None
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    # yt-dlp's extraction step behind `youtube` (tests hand in recorded info dicts).
    extract_youtube: Extract = extract_info
    # YouTube videos' facts for pricing, read from their metadata (trendflow.api.youtube).
    youtube: YoutubeMetadata = field(init=False)
    # Run creation refuses model-backed runs while this says no (503 model_serving_unavailable).
    model_serving: ModelServingProbe = field(init=False)
    # Uploads and estimates per user (429 rate_limited past them; trendflow.api.throttle).
    upload_limiter: SlidingWindowLimiter = field(init=False)
    estimate_limiter: SlidingWindowLimiter = field(init=False)

    def __post_init__(self) -> None:
        api = self.settings.api
        self.model_serving = ModelServingProbe(self.settings.triton)
        self.youtube = YoutubeMetadata(self.settings.segmenter,
                                       cache_s=api.youtube_metadata_cache_s,
                                       extract=self.extract_youtube)
        self.upload_limiter = SlidingWindowLimiter(
            what="uploads", limit=api.uploads_per_window, window_s=api.request_rate_window_s)
        self.estimate_limiter = SlidingWindowLimiter(
            what="estimates", limit=api.estimates_per_window, window_s=api.request_rate_window_s)

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` in the background, keeping a reference until it ends."""
        task = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
