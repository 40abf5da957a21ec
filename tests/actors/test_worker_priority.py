"""Component workers run below the API's CPU priority (real Ray worker processes).

What an operator sees with ``ps -o ni``: every thread of a worker's process at the configured
niceness, whether the worker got the runtime settings (the GPU pool) or reads them from the
environment Ray gave it (the CPU pool); the driver that started it keeps its own. Ray itself
starts workers at niceness 15 unless ``RAY_worker_niceness`` says otherwise; the local stack sets
it to 0 (so the API replicas outrank the workers), as these workers do.
"""

from __future__ import annotations

import os
from typing import Any

import psutil
import pytest
import ray

from trendflow.actors.workers import ComponentWorker, worker_options
from trendflow.settings import RuntimeSettings


def _thread_niceness(pid: int) -> set[int]:
    return {os.getpriority(os.PRIO_PROCESS, t.id) for t in psutil.Process(pid).threads()}


@pytest.fixture()
def start_worker(ray_cluster: dict[str, object]) -> Any:
    actors: list[Any] = []

    def start(*args: Any, env: dict[str, str] | None = None, ray_niceness: int = 0) -> int:
        env_vars = {"RAY_worker_niceness": str(ray_niceness), **(env or {})}
        actor = (ray.remote(ComponentWorker)
                 .options(**worker_options(cpus=0), runtime_env={"env_vars": env_vars})
                 .remote(*args))
        actors.append(actor)
        return int(ray.get(actor.pid.remote(), timeout=120))

    yield start
    for actor in actors:
        ray.kill(actor, no_restart=True)


def test_worker_given_runtime_settings_runs_at_their_niceness(start_worker: Any) -> None:
    before = os.getpriority(os.PRIO_PROCESS, 0)
    pid = start_worker("cpu", None, RuntimeSettings(worker_niceness=7))
    assert psutil.Process(pid).nice() == 7
    assert _thread_niceness(pid) == {7}  # Ray's own threads too, not only the actor's
    assert os.getpriority(os.PRIO_PROCESS, 0) == before


def test_cpu_pool_worker_reads_niceness_from_its_environment(start_worker: Any) -> None:
    pid = start_worker("cpu", env={"TRENDFLOW_RUNTIME__WORKER_NICENESS": "5"})
    assert _thread_niceness(pid) == {5}


def test_a_worker_already_nicer_keeps_its_niceness(start_worker: Any) -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)  # the test session's own (0 unless niced)
    pid = start_worker("cpu", None, RuntimeSettings(worker_niceness=7), ray_niceness=15)
    niceness = _thread_niceness(pid)
    # Ray's own nice(15) reaches only the threads started after it; the others are raised to 7,
    # and none is lowered (unprivileged users cannot).
    assert min(niceness) == max(7, base) and max(niceness) == min(19, base + 15), niceness
