"""Can model-backed work be accepted now? One readiness fact about the configured Triton.

Run creation asks it for a profile with model-backed components, so that a run is refused at
once with ``503 model_serving_unavailable`` and ``Retry-After`` while no model server is ready
(Triton stopped, crashed, or being restarted by the local stack's supervisor) instead of being
accepted and failing seconds later. ``/health`` reports the same fact.

The answer is cached for ``ttl_s`` (default 2 s): creation under load costs one readiness call
per replica every ``ttl_s``, not one per request; a server that just came back is seen within
``ttl_s``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from trendflow.errors import ModelServingDisabled, ModelServingUnavailable
from trendflow.settings import TritonSettings
from trendflow.triton.client import TritonClient

# How long a client is told to wait: about what the local stack needs to restart Triton.
RETRY_AFTER_S = 10


def _ask_server(settings: TritonSettings) -> bool:
    client = TritonClient.from_settings(settings)
    try:
        return client.server_ready()  # False for any failure to answer
    finally:
        client.close()


class ModelServingProbe:
    """The cached answer to "does the configured Triton answer ready?"."""

    def __init__(self, settings: TritonSettings, *, ttl_s: float = 2.0) -> None:
        self._settings = settings
        self._ttl_s = ttl_s
        self._checked_at = -float("inf")
        self._ready = False
        self._lock = asyncio.Lock()

    async def ready(self, *, fresh: bool = False) -> bool:
        """True when Triton answered ready within the last ``ttl_s`` (``fresh``: ask now)."""
        async with self._lock:  # concurrent creations share one server call
            if fresh or time.monotonic() - self._checked_at >= self._ttl_s:
                self._ready = await asyncio.to_thread(_ask_server, self._settings)
                self._checked_at = time.monotonic()
            return self._ready

    async def require_ready(self, components: Sequence[str]) -> None:
        """Raise unless ``components`` (the model-backed ones of a run) can be served now.

        :class:`ModelServingDisabled` (422) when this deployment serves no models at all,
        :class:`ModelServingUnavailable` (503, ``retry_after_s``) while its server is not ready.
        Nothing is checked for an empty list.
        """
        if not components:
            return
        if not self._settings.enabled:
            raise ModelServingDisabled(
                f"this deployment serves no models (TRENDFLOW_TRITON__ENABLED=false), and "
                f"{', '.join(components)} need one", components=list(components))
        if not await self.ready():
            raise ModelServingUnavailable(
                f"the model server ({self._settings.url}) is not ready, and "
                f"{', '.join(components)} need it; retry in {RETRY_AFTER_S} s",
                components=list(components), retry_after_s=RETRY_AFTER_S,
            )
