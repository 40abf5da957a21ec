"""Can model-backed work be accepted now? One readiness fact about the configured Triton.

Run creation asks it for a profile with model-backed components, so that a run is refused at
once with ``503 model_serving_unavailable`` and ``Retry-After`` while no model server is ready
(Triton stopped, crashed, or being restarted by the local stack's supervisor) instead of being
accepted and failing seconds later. ``/health`` reports the same fact.

The answer is cached for ``ttl_s`` (default 2 s): creation under load costs one readiness call
per replica every ``ttl_s``, not one per request; a server that just came back is seen within
``ttl_s``.

:func:`require_predictor` is the forecast's rule at run creation: a run asking for
``popularity_prediction`` needs a trained predictor, built in the repository and served.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

from trendflow.errors import ModelServingDisabled, ModelServingUnavailable
from trendflow.forecast.tier0 import check_predictor_served
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


def _check_served(settings: TritonSettings, enabled: Sequence[str],
                  mapping: Mapping[str, str]) -> None:
    client = TritonClient.from_settings(settings)
    try:
        check_predictor_served(enabled, mapping, settings.repository, client=client)
    finally:
        client.close()


async def require_predictor(
    settings: TritonSettings, enabled: Sequence[str], mapping: Mapping[str, str]
) -> None:
    """Refuse a run asking for the forecast while no trained predictor is served.

    ``enabled`` are the run's components, ``mapping`` its pinned ``component → name:version``.
    :func:`~trendflow.forecast.tier0.check_predictor_served` on this deployment's repository
    (the version has trained weights) and, while the server answers ready, on the server (it
    serves that version): :class:`~trendflow.errors.ModelNotFound` (``model_not_found``)
    otherwise. A server that does not answer is the readiness fact's business
    (:meth:`ModelServingProbe.require_ready`), not this rule's. Nothing is checked for a run
    without ``popularity_prediction`` or on a deployment that serves no models.
    """
    if "popularity_prediction" not in enabled or not settings.enabled:
        return
    check_predictor_served(enabled, mapping, settings.repository)  # no network: weights built
    if await asyncio.to_thread(_ask_server, settings):
        await asyncio.to_thread(_check_served, settings, enabled, mapping)
