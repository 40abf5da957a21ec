"""The scheduler's actor pools: Segmenters, CPU component workers, one worker per model-backed
component.

Created by the scheduler when it starts (:meth:`Pools.start`) and warmed before it reports
ready (:meth:`Pools.warm`, ``runtime.warm_workers``): every worker a run can need exists and has
initialised its components once, so the first run after ``trendflow up`` is not slower than
the next. A model-backed component's worker is created by that warming (for the components of
the profiles in the database, when models are served), else the first time a run needs it
(:meth:`Pools.prepare`), sized from the
``component_resource_requirements`` table — the one source of component resources, which the
planner reads too (seeded from each class's ``RESOURCES``; operators change it through
``/api/admin/resources``). With GPUs, that worker asks Ray for its share of one GPU's memory
(:func:`~trendflow.actors.workers.gpu_fraction`); without, it is a CPU actor calling Triton.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import ray

from trendflow.actors.calls import await_ref
from trendflow.actors.segmenter import SegmenterActor, segmenter_options
from trendflow.actors.workers import ComponentWorker, gpu_fraction, worker_options
from trendflow.db.repositories import catalog
from trendflow.errors import ConfigError, ServiceUnavailable
from trendflow.pipeline.components.base import Component
from trendflow.pipeline.components.registry import get_component
from trendflow.settings import Settings


def gpu_memory_mb(settings: Settings) -> int:
    """Memory of one of the cluster's GPUs in MB (0 without GPUs): the setting if given, else
    what NVML reports for GPU 0."""
    if int(ray.cluster_resources().get("GPU", 0)) == 0:
        return 0
    if settings.runtime.gpu_memory_mb is not None:
        return settings.runtime.gpu_memory_mb
    import pynvml  # nvidia-ml-py, NVIDIA's own bindings (a declared dependency)

    try:
        pynvml.nvmlInit()
        try:
            info = pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(0))
            return int(info.total) // 2**20
        finally:
            pynvml.nvmlShutdown()
    except pynvml.NVMLError as exc:
        raise ConfigError(
            "the cluster has GPUs but NVML cannot report their memory; set "
            "TRENDFLOW_RUNTIME__GPU_MEMORY_MB",
        ) from exc


@dataclass(slots=True)
class Pools:
    settings: Settings
    tag: str  # the scheduler's incarnation: actor names never clash with a predecessor's
    segmenters: list[Any]
    cpu: list[Any]
    gpu_total_mb: int
    gpu: dict[str, Any] = field(default_factory=dict)  # component → its worker
    names: dict[str, list[str]] = field(default_factory=dict)
    _next_cpu: int = 0
    _next_seg: int = 0

    @classmethod
    def start(cls, settings: Settings, tag: str) -> Pools:
        """Create the Segmenter and CPU worker actors; a ConfigError if they cannot fit."""
        rt = settings.runtime
        cluster_cpus = float(ray.cluster_resources().get("CPU", 0))
        wanted = rt.segmenter_actors * rt.segmenter_cpus + rt.cpu_workers * rt.cpu_worker_cpus
        if wanted > cluster_cpus + 1e-9:
            raise ConfigError(
                f"the Segmenter and CPU worker actors ask for {wanted:g} CPUs but the cluster "
                f"has {cluster_cpus:g}: lower TRENDFLOW_RUNTIME__CPU_WORKERS, "
                "__CPU_WORKER_CPUS or __SEGMENTER_CPUS, or add nodes"
            )
        names: dict[str, list[str]] = {"segmenter": [], "cpu": [], "gpu": []}
        segmenters = []
        for i in range(rt.segmenter_actors):
            name = f"trendflow-segmenter-{i}-{tag}"
            segmenters.append(
                ray.remote(SegmenterActor)
                .options(name=name, **segmenter_options(
                    cpus=rt.segmenter_cpus, resources=rt.segmenter_resources))
                .remote(settings)
            )
            names["segmenter"].append(name)
        cpu = []
        for i in range(rt.cpu_workers):
            name = f"trendflow-cpu-{i}-{tag}"
            cpu.append(
                ray.remote(ComponentWorker)
                .options(**worker_options(cpus=rt.cpu_worker_cpus, name=name))
                .remote("cpu")
            )
            names["cpu"].append(name)
        return cls(settings=settings, tag=tag, segmenters=segmenters, cpu=cpu,
                   gpu_total_mb=gpu_memory_mb(settings), names=names)

    def segmenter(self) -> Any:
        actor = self.segmenters[self._next_seg % len(self.segmenters)]
        self._next_seg += 1
        return actor

    async def prepare(self, conn: Any, classes: Iterable[type[Component]]) -> None:
        """Create the worker of each model-backed component in ``classes`` that has none yet,
        sized from its row of ``component_resource_requirements``."""
        missing = [c.NAME for c in classes if c.USES_MODEL_SERVER and c.NAME not in self.gpu]
        if not missing:
            return
        rt = self.settings.runtime
        reqs = await catalog.get_resource_requirements(conn, component_names=missing)
        for component in missing:
            name = self._gpu_name(component)
            if self.gpu_total_mb:
                options = worker_options(
                    cpus=float(reqs[component].cpu_cores_per_task),
                    num_gpus=gpu_fraction(reqs[component].gpu_memory_per_task,
                                          self.gpu_total_mb),
                    name=name, concurrency=rt.gpu_worker_concurrency,
                )
                device = "gpu"
            else:
                options = worker_options(cpus=rt.cpu_worker_cpus, name=name,
                                         concurrency=rt.gpu_worker_concurrency)
                device = "cpu"
            self.gpu[component] = (
                ray.remote(ComponentWorker).options(**options)
                .remote(device, self.settings.triton, rt)
            )
            self.names["gpu"].append(name)

    def _gpu_name(self, component: str) -> str:
        return f"trendflow-gpu-{component}-{self.tag}"

    async def warm(self, conn: Any) -> dict[str, Any]:
        """Start every worker a run can need and initialise it once, before any run.

        "What a run can need" = the components enabled in some profile of the database: the
        CPU workers load each CPU component and run its :meth:`~Component.warm_up` (imports,
        librosa's numba JIT), and — when models are served (``triton.enabled``) — each
        model-backed component gets its worker now (the one :meth:`prepare` would create for
        its first run, no more) and loads its class there. The Segmenters are waited for.

        Returns ``{"state": "warm", "seconds", "workers": {actor name: {component: s}}}``. A
        worker that fails or does not finish within ``runtime.warm_timeout_s`` is reported
        (:class:`ServiceUnavailable` naming each actor and its error), never skipped.
        """
        started = time.perf_counter()
        classes = [get_component(n) for n in await catalog.profiled_components(conn)]
        if self.settings.triton.enabled:
            await self.prepare(conn, classes)
        cpu_components = [c.NAME for c in classes if not c.USES_MODEL_SERVER]
        calls: dict[str, Any] = {}
        for name, segmenter in zip(self.names["segmenter"], self.segmenters, strict=True):
            calls[name] = segmenter.pid.remote()
        for name, worker in zip(self.names["cpu"], self.cpu, strict=True):
            calls[name] = worker.warm.remote(cpu_components)
        for component, worker in self.gpu.items():
            calls[self._gpu_name(component)] = worker.warm.remote([component])
        timeout = self.settings.runtime.warm_timeout_s
        results = await asyncio.gather(*(await_ref(ref, timeout) for ref in calls.values()),
                                       return_exceptions=True)
        failed = {}
        for name, result in zip(calls, results, strict=True):
            if isinstance(result, TimeoutError):
                failed[name] = f"did not warm within {timeout:g} s (runtime.warm_timeout_s)"
            elif isinstance(result, BaseException):
                cause = getattr(result, "cause", None) or result  # a RayTaskError's own error
                failed[name] = f"{type(cause).__name__}: {cause}"
        if failed:
            raise ServiceUnavailable(
                "worker actors failed to warm: "
                + "; ".join(f"{name}: {why}" for name, why in failed.items()),
                workers=failed,
            )
        return {
            "state": "warm",
            "seconds": round(time.perf_counter() - started, 2),
            "workers": {name: result for name, result in zip(calls, results, strict=True)
                        if isinstance(result, dict)},
        }

    def worker_for(self, cls: type[Component]) -> Any:
        """The actor that runs ``cls``'s tasks: its own (model-backed, after :meth:`prepare`)
        or the next CPU worker."""
        if cls.USES_MODEL_SERVER:
            return self.gpu[cls.NAME]
        worker = self.cpu[self._next_cpu % len(self.cpu)]
        self._next_cpu += 1
        return worker

    def workers(self) -> list[Any]:
        """Every component worker (what a finished run's instances are released on)."""
        return [*self.cpu, *self.gpu.values()]


__all__ = ["Pools", "gpu_memory_mb"]
