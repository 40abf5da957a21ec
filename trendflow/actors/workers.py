"""Component workers: actors that run components' ``setup``/``map``/``reduce``.

One class serves both pools: CPU workers (classic DSP/CV components) and GPU workers
(model-backed components, whose GPU memory need becomes a fractional ``num_gpus``; on a cluster
without GPUs the same actors run with no GPU request). A worker hosts any number of component
instances, keyed by ``(run_id, component)``, each set up lazily on the first call that needs it:
components' ``map`` must not depend on state written by another ``map``, so any chunk of a run
can be mapped on any worker, and a restarted worker simply sets the component up again.

GPU workers are threaded actors (``max_concurrency = runtime.gpu_worker_concurrency``): they map
several chunks at once — of one run and of the other runs of its batch — and every model request
of those maps goes through one :class:`~trendflow.triton.batching.BatchingClient`, which merges
them into batches of up to the model's ``max_batch_size`` rows. CPU workers map one chunk at a
time.

Frames arrive as ObjectRefs resolved by Ray into zero-copy read-only views of the object store;
nothing here copies a chunk.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

from trendflow.metrics import get_metrics
from trendflow.pipeline.components.base import (
    Component,
    ComponentContext,
    ComponentResult,
    Input,
    select_chunk,
)
from trendflow.pipeline.components.registry import get_component
from trendflow.pipeline.execution import maps_chunk
from trendflow.pipeline.types import AudioTrack, FrameChunk
from trendflow.priority import lower_worker_priority
from trendflow.settings import RuntimeSettings, TritonSettings
from trendflow.triton.batching import BatchingClient
from trendflow.triton.client import TritonClient


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    """What a worker needs to build one component of one run (small; the context is a ref)."""

    run_id: str
    component: str
    params: dict[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        return (self.run_id, self.component)


@dataclass(slots=True)
class WorkerReport:
    """Observations a worker returns with a reduce: where it ran and how much memory it used."""

    device_used: str
    peak_ram_mb: float
    gpu_memory_mb: float | None = None
    worker_pid: int = field(default_factory=os.getpid)


@dataclass(slots=True)
class ReduceOutcome:
    result: ComponentResult
    report: WorkerReport
    busy_s: float = 0.0  # the reduce itself (and a setup, if this worker had to run one)


@dataclass(slots=True)
class MapOutcome:
    """A partial and the seconds this worker spent on it (setup included, if it ran one).

    Summed over maps and the reduce this is the component's own work: the manifest's
    ``duration_ms``, the same measure the local runner records and calibration reads.
    """

    partial: Any
    busy_s: float


class ComponentWorker:
    """An actor body (undecorated; :func:`worker_options` derives its Ray options)."""

    def __init__(
        self,
        device: str,
        triton: TritonSettings | None = None,
        runtime: RuntimeSettings | None = None,
    ) -> None:
        lower_worker_priority(runtime)  # below the API and the scheduler: docs/performance.md
        self._device = device
        # Model-backed components run on the GPU actors, which hold the Triton client (one per
        # actor, merging the requests of concurrent maps) and hand it to every component they
        # set up.
        self._services: dict[str, Any] = {}
        if triton is not None:
            rt = runtime or RuntimeSettings()
            self._services["triton"] = BatchingClient(
                lambda: TritonClient.from_settings(triton),
                max_wait_s=rt.gpu_batch_wait_ms / 1000.0,
                max_in_flight=rt.gpu_batch_in_flight,
                observe=get_metrics().model_batch,
            )
        self._instances: dict[tuple[str, str], Component] = {}
        self._peak_rss: dict[tuple[str, str], float] = {}
        self._process = psutil.Process()
        # Threaded (GPU) actors: one lock per instance key, so a component is set up once even
        # when several of its chunks arrive together.
        self._lock = threading.Lock()
        self._setup_locks: dict[tuple[str, str], threading.Lock] = {}

    def _instance(
        self, spec: ComponentSpec, ctx: ComponentContext, audio: AudioTrack | None
    ) -> Component:
        found = self._instances.get(spec.key)
        if found is not None:
            return found
        with self._lock:
            setup_lock = self._setup_locks.setdefault(spec.key, threading.Lock())
        with setup_lock:
            found = self._instances.get(spec.key)
            if found is None:
                cls = get_component(spec.component)
                found = cls(**spec.params)
                if Input.AUDIO in cls.INPUTS:
                    ctx.audio = audio
                if self._services:
                    ctx.services = {**ctx.services, **self._services}
                found.setup(ctx)
                self._instances[spec.key] = found
        return found

    def _note_rss(self, key: tuple[str, str]) -> None:
        rss_mb = self._process.memory_info().rss / 2**20
        with self._lock:
            self._peak_rss[key] = max(self._peak_rss.get(key, 0.0), rss_mb)

    def map(
        self,
        spec: ComponentSpec,
        ctx: ComponentContext,
        audio: AudioTrack | None,
        chunk: FrameChunk,
    ) -> MapOutcome | None:
        """Map one union chunk: the component sees only the frames of its own sampling.

        A chunk holding none of the component's frames is not mapped: None.
        """
        if ctx.frame_indices is None or not maps_chunk(ctx, chunk):
            return None
        started = time.perf_counter()
        component = self._instance(spec, ctx, audio)
        partial = component.map(select_chunk(chunk, ctx.frame_indices))
        self._note_rss(spec.key)
        return MapOutcome(partial=partial, busy_s=time.perf_counter() - started)

    def reduce(
        self, spec: ComponentSpec, ctx: ComponentContext, audio: AudioTrack | None, *partials: Any
    ) -> ReduceOutcome:
        """Reduce the partials (given in chunk order) and forget the instance."""
        started = time.perf_counter()
        component = self._instance(spec, ctx, audio)
        try:
            result = component.reduce(list(partials))
            self._note_rss(spec.key)
            return ReduceOutcome(
                result=result,
                report=WorkerReport(
                    device_used=self._device, peak_ram_mb=round(self._peak_rss[spec.key], 1)
                ),
                busy_s=time.perf_counter() - started,
            )
        finally:
            self._forget(spec.key)

    def warm(self, components: list[str]) -> dict[str, float]:
        """Load each component's class and run its one-time :meth:`~Component.warm_up` in this
        process (before any run: :meth:`trendflow.actors.pools.Pools.warm`); seconds per
        component. An error propagates to the caller, which reports it."""
        seconds = {}
        for name in components:
            started = time.perf_counter()
            get_component(name).warm_up()
            seconds[name] = round(time.perf_counter() - started, 3)
        return seconds

    def release(self, run_id: str) -> int:
        """Drop every instance of ``run_id`` (a cancelled or failed run); returns how many."""
        keys = [k for k in self._instances if k[0] == run_id]
        for key in keys:
            self._forget(key)
        return len(keys)

    def _forget(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._instances.pop(key, None)
            self._peak_rss.pop(key, None)
            self._setup_locks.pop(key, None)

    def batch_stats(self) -> dict[str, float]:
        """What this actor's model client sent: requests, server calls, rows, merged calls."""
        client = self._services.get("triton")
        if not isinstance(client, BatchingClient):
            return {}
        return {**asdict(client.stats), "rows_per_call": round(client.stats.rows_per_call, 2)}

    def pid(self) -> int:
        return os.getpid()


def gpu_fraction(gpu_memory_mb: int, gpu_total_mb: int) -> float:
    """``num_gpus`` for the GPU worker of a component: its share of one GPU's memory.

    Ray's ``num_gpus`` isolates nothing; it only keeps Ray from packing more workers on a GPU
    than the fractions allow. The scheduler's own accounting (``plan_batches``) keeps memory in
    bounds.
    """
    if gpu_total_mb <= 0 or gpu_memory_mb <= 0:
        raise ValueError(
            f"GPU memory must be > 0 (component {gpu_memory_mb} MB, GPU {gpu_total_mb} MB)"
        )
    return round(max(0.01, min(1.0, gpu_memory_mb / gpu_total_mb)), 4)


def worker_options(
    *, cpus: float, num_gpus: float = 0.0, name: str | None = None, concurrency: int = 1
) -> dict[str, Any]:
    """Ray actor options of a component worker: restarted when its process dies;
    ``concurrency > 1`` makes it a threaded actor (GPU workers)."""
    options: dict[str, Any] = {
        "num_cpus": cpus,
        "max_restarts": -1,
        "max_task_retries": 0,  # the scheduler retries, with backoff and its own accounting
        "max_concurrency": concurrency,
    }
    if num_gpus > 0:
        options["num_gpus"] = num_gpus
    if name is not None:
        options["name"] = name
    return options


__all__ = [
    "MapOutcome",
    "ComponentSpec",
    "ComponentWorker",
    "ReduceOutcome",
    "WorkerReport",
    "gpu_fraction",
    "worker_options",
]
