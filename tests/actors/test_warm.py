"""Warming the scheduler's worker pools: the workers exist and have initialised their components
before the scheduler reports ready, i.e. before any run (``runtime.warm_workers``)."""

from __future__ import annotations

from typing import Any

import pytest
import ray

from tests.actors.conftest import Runtime, named_actor
from trendflow.actors.scheduler import start_scheduler as start
from trendflow.db.repositories import catalog
from trendflow.errors import ServiceUnavailable
from trendflow.pipeline.components.registry import get_component


async def test_the_workers_are_started_and_warmed_before_the_scheduler_is_ready(
    runtime: Runtime, start_scheduler: Any
) -> None:
    settings = runtime.settings.model_copy(deep=True)
    settings.runtime.warm_workers = True
    settings.triton.enabled = False  # no model server here: no model-backed worker is made
    async with runtime.pool.acquire() as conn:
        profiled = await catalog.profiled_components(conn)
    cpu_components = [n for n in profiled if not get_component(n).USES_MODEL_SERVER]
    assert "audio_features" in cpu_components  # the one with a real cold start (numba)

    handle = start_scheduler(settings)
    info = ray.get(handle.describe.remote(), timeout=30)

    assert info["active_runs"] == []  # nothing ran: the warmth is the pools' own
    warm = info["warm"]
    assert warm["state"] == "warm"
    assert set(warm["workers"]) == set(info["actors"]["cpu"])
    for name in info["actors"]["cpu"]:
        # Every CPU worker loaded every CPU component of the profiles and warmed it...
        assert set(warm["workers"][name]) == set(cpu_components)
        # ...and is a live actor now.
        assert isinstance(ray.get(named_actor(name, settings).pid.remote(), timeout=30), int)
    assert info["actors"]["gpu"] == []
    for name in info["actors"]["segmenter"]:
        assert isinstance(ray.get(named_actor(name, settings).pid.remote(), timeout=30), int)


async def test_without_warming_the_workers_start_cold(
    runtime: Runtime, start_scheduler: Any
) -> None:
    handle = start_scheduler(runtime.settings)  # the bench's warm_workers = False
    info = ray.get(handle.describe.remote(), timeout=30)
    assert info["warm"] == {"state": "off"}


async def test_a_worker_that_does_not_warm_fails_the_start_with_its_name(
    runtime: Runtime,
) -> None:
    settings = runtime.settings.model_copy(deep=True)
    settings.runtime.warm_workers = True
    settings.runtime.warm_timeout_s = 0.001  # no actor process starts this fast
    settings.triton.enabled = False
    try:
        with pytest.raises(ServiceUnavailable) as raised:
            start(settings, timeout_s=60)
        failed = raised.value.details["workers"]
        assert {n.rsplit("-", 1)[0] for n in failed} >= {
            "trendflow-segmenter-0", "trendflow-cpu-0", "trendflow-cpu-1"}
        assert all("did not warm within" in why for why in failed.values())
    finally:  # the scheduler is detached: it (and the pools it owns) goes only when killed
        ray.kill(ray.get_actor(settings.runtime.scheduler_name,
                               namespace=settings.runtime.namespace), no_restart=True)
