"""The scheduler actor: takes queued runs from the ``runs`` table and drives them to the end.

One named, detached actor per cluster (``runtime.scheduler_name`` in ``runtime.namespace``),
restarted by Ray when its process dies (``max_restarts``). Its loop runs on its own event-loop
thread, started in ``__init__``, so a restarted scheduler resumes by itself:

1. **Recovery** — runs left ``running`` by an earlier incarnation go back to ``queued``
   (``requeue_interrupted``); when claimed again, components already ``ok``/``empty`` in the
   run's manifest are not recomputed.
2. **Admission** — a queued run is planned once it has waited the admission window, so runs
   that arrive together are planned together; the API never waits for it (it only inserts the
   row). :func:`~trendflow.actors.planning.plan_batches` decides which of the oldest queued runs
   start now, from ``component_resource_requirements`` and what runs in flight already use;
   admitted runs are claimed with ``FOR UPDATE SKIP LOCKED`` (``claim_next_runs``).
3. **Execution** — per run: the Segmenter actor prepares the video; each dependency layer of
   components maps over the frame chunks streamed through the object store (at most
   ``chunks_in_flight`` chunks per run), reduces, persists its NPZ and rewrites the manifest;
   ``run_components`` and ``runs`` follow every stage. A Segmenter lost mid-stream (its
   process died, Ray restarted it) is asked to prepare the video again and the stream resumes
   at the first chunk not yet received, within the retry budget.

Failure rules are :mod:`trendflow.actors.policy`. Cancelling a run stops its work and keeps what
finished. See ``docs/runtime.md`` for operating it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import ray
from ray.exceptions import (
    ActorDiedError,
    ActorUnavailableError,
    ObjectLostError,
    RayActorError,
    TaskCancelledError,
)

from trendflow.actors.planning import Capacity, PendingRun, TaskDemand, plan_batches
from trendflow.actors.policy import Timeouts, Verdict, backoff_s, decide, resolve_timeouts
from trendflow.actors.segmenter import PreparedSummary, SegmenterActor, segmenter_options
from trendflow.actors.workers import (
    SKIPPED,
    ComponentSpec,
    ComponentWorker,
    ReduceOutcome,
    gpu_fraction,
    worker_options,
)
from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.manifest import (
    ComponentRecord,
    ErrorInfo,
    Manifest,
    VideoSection,
    load_manifest,
    save_manifest,
    utc_now,
)
from trendflow.contracts.profile import ModelRef, ProfileConfig
from trendflow.db.pool import Database, open_database
from trendflow.db.repositories import catalog
from trendflow.db.repositories import components as rc_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.errors import (
    ArtifactNotFound,
    ConfigError,
    MediaError,
    OutOfMemory,
    RunNotFound,
    RunUnschedulable,
    TimeoutExceeded,
    TransientError,
    TrendflowError,
)
from trendflow.metrics import get_metrics, sample_gpu_utilization
from trendflow.pipeline.components.base import Component, Input
from trendflow.pipeline.components.registry import get_component
from trendflow.pipeline.execution import (
    ComponentTiming,
    as_trendflow_error,
    build_context,
    component_indices,
    dependency_layers,
    finished_components,
    load_outputs,
    persist_result,
    record_done,
    record_error,
    record_running,
)
from trendflow.pipeline.runner import ABORTED
from trendflow.pipeline.sampling import union_indices
from trendflow.runs import Ending, end_run
from trendflow.settings import RuntimeSettings, Settings
from trendflow.storage.base import ResultStore
from trendflow.storage.factory import open_store
from trendflow.storage.keys import manifest_key

log = logging.getLogger(__name__)
T = TypeVar("T")

_WORKER_LOST = (ActorDiedError, ActorUnavailableError, RayActorError)


class _Cancelled(Exception):
    """Raised inside a run's task when the run was cancelled (never leaves the scheduler)."""


class _SegmenterLost(Exception):
    """A run's chunk stream broke because its Segmenter actor died or restarted (internal)."""


class _InputLost(Exception):
    """An object a task needed (a chunk, the audio track) is gone: the node that held it died
    with its object store, and Ray cannot rebuild it (internal)."""


class _RunFailed(Exception):
    def __init__(self, error: TrendflowError) -> None:
        super().__init__(error.message)
        self.error = error


def _ray_error(exc: BaseException) -> BaseException:
    """The application error inside a RayTaskError (TrendFlow errors pickle intact)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


async def _await_ref(ref: ray.ObjectRef, timeout_s: float | None) -> Any:
    fut = asyncio.wrap_future(ref.future())
    if timeout_s is None:
        return await fut
    try:
        return await asyncio.wait_for(fut, timeout=max(0.001, timeout_s))
    except TimeoutError:
        ray.cancel(ref, force=False)
        raise


@dataclass(slots=True)
class _Active:
    run_id: str
    footprint: PendingRun
    task: asyncio.Task[None] | None = None
    cancel_requested: bool = False


@dataclass(slots=True)
class _Pools:
    segmenters: list[Any]
    cpu: list[Any]
    gpu: dict[str, Any]  # component → its GPU actor
    names: dict[str, list[str]] = field(default_factory=dict)
    _next_cpu: int = 0
    _next_seg: int = 0

    def cpu_worker(self) -> Any:
        worker = self.cpu[self._next_cpu % len(self.cpu)]
        self._next_cpu += 1
        return worker

    def segmenter(self) -> Any:
        actor = self.segmenters[self._next_seg % len(self.segmenters)]
        self._next_seg += 1
        return actor


class Scheduler:
    """Actor body (undecorated; :func:`start_scheduler` creates it named and detached)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._rt: RuntimeSettings = settings.runtime
        self._incarnation = uuid.uuid4().hex[:8]
        self._worker_id = f"{self._rt.scheduler_name}/{self._incarnation}"
        self._active: dict[str, _Active] = {}
        self._stopping = False
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="scheduler", daemon=True
        )
        self._thread.start()
        self._main = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        self._segment_starts: dict[str, float] = {}

    # -- public actor methods (called through Ray from any thread) ------------------------------

    def ready(self, timeout_s: float = 120.0) -> dict[str, Any]:
        """Block until the loop has opened the database and started its actors."""
        if not self._started.wait(timeout_s):
            raise TimeoutExceeded(f"scheduler did not start within {timeout_s} s")
        if self._start_error is not None:
            raise self._start_error
        return self.describe()

    def describe(self) -> dict[str, Any]:
        """Incarnation, worker actor names, active runs (for operators and tests)."""
        return {
            "incarnation": self._incarnation,
            "worker_id": self._worker_id,
            "actors": dict(self._pools.names) if hasattr(self, "_pools") else {},
            "active_runs": sorted(self._active),
        }

    def wake(self) -> None:
        """New runs were queued: look now instead of at the next poll."""
        self._loop.call_soon_threadsafe(self._wakeup.set)

    def cancel(self, run_id: str, timeout_s: float = 60.0) -> str:
        """Cancel a queued or running run; returns its final status."""
        fut = asyncio.run_coroutine_threadsafe(self._cancel(run_id), self._loop)
        return fut.result(timeout_s)

    def segment_started_at(self, run_id: str) -> float | None:
        """Wall-clock time the Segmenter was first asked to prepare ``run_id`` (benchmarks)."""
        return self._segment_starts.get(run_id)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop taking runs, let nothing half-written remain, and close the database."""
        self._stopping = True
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        fut.result(timeout_s)

    # -- the loop --------------------------------------------------------------------------------

    async def _serve(self) -> None:
        self._wakeup = asyncio.Event()
        try:
            self._db: Database = await open_database(self._settings, migrate=False)
            self._store: ResultStore = open_store(self._settings)
            self._pools = self._start_pools()
            async with self._db.acquire() as conn:
                requeued = await runs_repo.requeue_interrupted(conn)
            if requeued:
                log.info("requeued %d interrupted runs", requeued)
        except BaseException as exc:  # reported by ready()
            self._start_error = exc
            self._started.set()
            raise
        self._started.set()
        while not self._stopping:
            try:
                await self._tick()
            except Exception:
                log.exception("scheduler tick failed; retrying after the poll interval")
                get_metrics().error("internal_error")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._rt.poll_interval_s)
            self._wakeup.clear()

    async def _shutdown(self) -> None:
        for active in list(self._active.values()):
            if active.task is not None:
                active.task.cancel()
        tasks = [a.task for a in self._active.values() if a.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._db.close()

    def _start_pools(self) -> _Pools:
        rt = self._rt
        tag = self._incarnation
        cluster_cpus = float(ray.cluster_resources().get("CPU", 0))
        wanted = rt.segmenter_actors * rt.segmenter_cpus + rt.cpu_workers * rt.cpu_worker_cpus
        if wanted > cluster_cpus + 1e-9:
            raise ConfigError(
                f"the Segmenter and CPU worker actors ask for {wanted:g} CPUs but the cluster "
                f"has {cluster_cpus:g}: lower TRENDFLOW_RUNTIME__CPU_WORKERS, "
                "__CPU_WORKER_CPUS or __SEGMENTER_CPUS, or add nodes"
            )
        names: dict[str, list[str]] = {"segmenter": [], "cpu": [], "gpu": []}
        segs = []
        for i in range(rt.segmenter_actors):
            name = f"trendflow-segmenter-{i}-{tag}"
            segs.append(
                ray.remote(SegmenterActor)
                .options(name=name, **segmenter_options(
                    cpus=rt.segmenter_cpus, resources=rt.segmenter_resources))
                .remote(self._settings)
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
        self._gpu_total_mb = self._gpu_memory_mb()
        self._pools = _Pools(segmenters=segs, cpu=cpu, gpu={}, names=names)
        return self._pools

    def _gpu_memory_mb(self) -> int:
        n_gpus = int(ray.cluster_resources().get("GPU", 0))
        if n_gpus == 0:
            return 0
        if self._rt.gpu_memory_mb is not None:
            return self._rt.gpu_memory_mb
        from ray._private.thirdparty import pynvml

        try:
            pynvml.nvmlInit()
            try:
                info = pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(0))
                return int(info.total // 2**20)
            finally:
                pynvml.nvmlShutdown()
        except pynvml.NVMLError as exc:
            raise ConfigError(
                "the cluster has GPUs but NVML cannot report their memory; set "
                "TRENDFLOW_RUNTIME__GPU_MEMORY_MB",
            ) from exc

    def _gpu_worker(self, cls: type[Component]) -> Any:
        """The GPU actor of a model-backed component (a CPU request only, without GPUs)."""
        actor = self._pools.gpu.get(cls.NAME)
        if actor is None:
            name = f"trendflow-gpu-{cls.NAME}-{self._incarnation}"
            concurrency = self._rt.gpu_worker_concurrency
            if self._gpu_total_mb:
                options = worker_options(
                    cpus=cls.RESOURCES.cpus,
                    num_gpus=gpu_fraction(cls.RESOURCES.gpu_memory_mb, self._gpu_total_mb),
                    name=name,
                    concurrency=concurrency,
                )
                device = "gpu"
            else:
                options = worker_options(
                    cpus=self._rt.cpu_worker_cpus, name=name, concurrency=concurrency
                )
                device = "cpu"
            actor = (
                ray.remote(ComponentWorker)
                .options(**options)
                .remote(device, self._settings.triton, self._rt)
            )
            self._pools.gpu[cls.NAME] = actor
            self._pools.names["gpu"].append(name)
        return actor

    def _worker_for(self, cls: type[Component]) -> Any:
        if cls.USES_MODEL_SERVER:
            return self._gpu_worker(cls)
        return self._pools.cpu_worker()

    # -- admission -------------------------------------------------------------------------------

    def _total_capacity(self) -> Capacity:
        res = ray.cluster_resources()
        gpus = int(res.get("GPU", 0))
        return Capacity(
            cpus=self._rt.planning_cpus or float(res.get("CPU", 0)),
            memory_mb=self._rt.planning_memory_mb or int(res.get("memory", 0) // 2**20),
            gpu_free_mb={f"gpu{i}": self._gpu_total_mb for i in range(gpus)},
        )

    def _free_capacity(self, total: Capacity) -> Capacity:
        cpus, memory = total.cpus, total.memory_mb
        gpu_free = dict(total.gpu_free_mb)
        for active in self._active.values():
            cpus -= active.footprint.cpus
            memory -= active.footprint.memory_mb
        if gpu_free:
            # Re-place the running runs' GPU tasks (first fit, as the plan did).
            replay = plan_batches(
                [a.footprint for a in self._active.values()],
                Capacity(cpus=float("inf"), memory_mb=2**62, gpu_free_mb=gpu_free),
            )
            gpu_free = dict(replay.remaining.gpu_free_mb)
        return Capacity(
            cpus=cpus,
            memory_mb=memory,
            gpu_free_mb=gpu_free,
            max_runs=max(0, self._rt.max_concurrent_runs - len(self._active)),
        )

    async def _tick(self) -> None:
        async with self._db.acquire() as conn:
            queued = await runs_repo.peek_queued(conn, limit=4 * self._rt.max_concurrent_runs)
            get_metrics().set_queue_length(await runs_repo.queue_length(conn))
        sample_gpu_utilization()
        if not queued or len(self._active) >= self._rt.max_concurrent_runs:
            return
        oldest_age = queued[0].age_s
        if oldest_age < self._rt.admission_window_s:
            await asyncio.sleep(self._rt.admission_window_s - oldest_age)
            async with self._db.acquire() as conn:
                queued = await runs_repo.peek_queued(conn, limit=4 * self._rt.max_concurrent_runs)
            if not queued:
                return
        pending: list[PendingRun] = []
        async with self._db.acquire() as conn:
            for q in queued:
                try:
                    pending.append(await _footprint(conn, q.run_id, q.profile_config))
                except TrendflowError as exc:
                    await self._fail_queued(conn, q.run_id, exc)
        total = self._total_capacity()
        plan = plan_batches(pending, self._free_capacity(total), total=total)
        by_id = {p.run_id: p for p in pending}
        async with self._db.acquire() as conn:
            for run_id in plan.unschedulable:
                await self._fail_queued(
                    conn,
                    run_id,
                    RunUnschedulable(
                        f"run {run_id} needs {by_id[run_id].cpus:g} CPU cores and "
                        f"{by_id[run_id].memory_mb} MB of RAM (plus its GPU memory), more than "
                        f"the idle cluster offers ({total.cpus:g} cores, {total.memory_mb} MB); "
                        "raise TRENDFLOW_RUNTIME__PLANNING_CPUS/_MEMORY_MB or add nodes",
                        run_id=run_id,
                    ),
                )
            if not plan.admitted:
                return
            claimed = await runs_repo.claim_next_runs(
                conn, limit=len(plan.admitted), worker_id=self._worker_id
            )
            admitted = set(plan.admitted)
            for run in claimed:
                run_id = str(run.run_id)
                if run_id not in admitted:  # the queue changed between peek and claim
                    await runs_repo.set_run_status(conn, run_id=run.run_id, status="queued")
                    continue
                self._launch(run, by_id[run_id])

    def _launch(self, run: runs_repo.Run, footprint: PendingRun) -> None:
        run_id = str(run.run_id)
        active = _Active(run_id=run_id, footprint=footprint)
        self._active[run_id] = active
        active.task = self._loop.create_task(self._drive(run, active), name=f"run-{run_id}")

    async def _fail_queued(self, conn: Any, run_id: str, error: TrendflowError) -> None:
        # A run cancelled meanwhile keeps its ending (end_run is idempotent).
        await end_run(conn, run_id=uuid.UUID(run_id), status="error", error=error)

    # -- cancel ----------------------------------------------------------------------------------

    async def _cancel(self, run_id: str) -> str:
        active = self._active.get(run_id)
        if active is not None and active.task is not None:
            active.cancel_requested = True
            active.task.cancel()
            await asyncio.gather(active.task, return_exceptions=True)
        async with self._db.acquire() as conn:
            run = await end_run(conn, run_id=uuid.UUID(run_id), status="cancelled")
        return run.status

    # -- one run ---------------------------------------------------------------------------------

    async def _drive(self, run: runs_repo.Run, active: _Active) -> None:
        run_id = str(run.run_id)
        execution = _RunExecution(self, run)
        try:
            await execution.execute()
        except asyncio.CancelledError:
            if active.cancel_requested:
                await execution.finish_cancelled()
            # else: the scheduler is stopping; the run stays `running` and is requeued on start
        except Exception as exc:
            log.exception("run %s crashed in the scheduler", run_id)
            with contextlib.suppress(Exception):
                await execution.finish_error(as_trendflow_error(exc, "scheduler"))
        finally:
            self._active.pop(run_id, None)
            await execution.release()
            self._wakeup.set()


class _Limiter:
    """A resizable concurrency limit (OOM halves a component's maps in flight)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_use = 0
        self._cond = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self._in_use < self.limit)
            self._in_use += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self._in_use -= 1
            self._cond.notify_all()

    async def halve(self) -> None:
        async with self._cond:
            self.limit = max(1, self.limit // 2)


@dataclass(slots=True)
class _ComponentState:
    name: str
    cls: type[Component]
    required: bool
    spec: ComponentSpec
    ctx_ref: Any = None
    started_at: Any = None
    deadline: float = 0.0
    partials: dict[int, Any] = field(default_factory=dict)
    failed: TrendflowError | None = None
    halvings: int = 0
    busy_s: float = 0.0  # the component's own work across workers (see MapOutcome)
    limiter: _Limiter | None = None
    outcome: tuple[ReduceOutcome, Any] | None = None


class _RunExecution:
    """Everything one run needs while it executes; lives inside the scheduler's loop."""

    def __init__(self, scheduler: Scheduler, run: runs_repo.Run) -> None:
        self.s = scheduler
        self.rt = scheduler._rt
        self.run = run
        self.run_id = str(run.run_id)
        self.identity = RunIdentity(
            platform_id=run.platform_id,  # type: ignore[arg-type]
            video_id=run.video_id,
            run_id=self.run_id,
            config_hash=run.config_hash,
            sampling_policy_version=run.sampling_policy_version,
            dataprocessor_version=run.dataprocessor_version,
        )
        self.manifest: Manifest | None = None
        self.segmenter: Any = None
        self.audio_ref: Any = None
        self.sampling: tuple[float, int] | None = None  # (fps, height) the video is prepared at
        self.segmenter_losses = 0  # chunk streams broken by a lost Segmenter, for the budget
        self.lost_chunks: set[int] = set()  # positions whose chunk objects died with a node
        self.timeouts: Timeouts = resolve_timeouts(self.rt, None)
        self.warnings: list[str] = []

    # -- persistence helpers ---------------------------------------------------------------------

    async def _save(self) -> None:
        assert self.manifest is not None
        await save_manifest(self.s._store, self.manifest)

    async def _db_component(self, name: str, rec: ComponentRecord) -> None:
        async with self.s._db.acquire() as conn:
            await rc_repo.record_component(conn, run_id=self.run.run_id, name=name, record=rec)

    async def _stage(self, stage: str) -> None:
        async with self.s._db.acquire() as conn:
            await runs_repo.set_run_stage(conn, run_id=self.run.run_id, stage=stage)

    # -- manifest --------------------------------------------------------------------------------

    async def _open_manifest(
        self, profile: ProfileConfig, classes: Mapping[str, type[Component]]
    ) -> Manifest:
        key = manifest_key(self.run.platform_id, self.run.video_id, self.run_id)
        try:
            manifest = await load_manifest(self.s._store, key)
        except ArtifactNotFound:
            mapping = {
                name: ModelRef.parse(ref) for name, ref in (self.run.model_mapping or {}).items()
            }
            manifest = Manifest.new(
                self.identity,
                components={
                    c.name: ComponentRecord.pending(
                        schema_version=classes[c.name].SCHEMA_VERSION,
                        producer_version=classes[c.name].PRODUCER_VERSION,
                        required=c.required,
                        model=mapping[c.name].ref if c.name in mapping else None,
                    )
                    for c in profile.enabled
                },
                model_mapping=mapping,
                profile_id=self.run.profile_id,
                user_id=None if self.run.user_id is None else str(self.run.user_id),
                created_at=self.run.created_at,
            )
        for name, rec in manifest.components.items():
            if rec.status in ("running", "error"):  # interrupted or failed earlier: redo
                manifest.components[name] = ComponentRecord.pending(
                    schema_version=rec.schema_version,
                    producer_version=rec.producer_version,
                    required=rec.required,
                    model=rec.model,
                )
        manifest.run.status = "running"
        manifest.run.error = None
        manifest.run.finished_at = None
        manifest.run.started_at = manifest.run.started_at or utc_now()
        return manifest

    # -- execute ---------------------------------------------------------------------------------

    async def execute(self) -> str:
        try:
            async with asyncio.timeout(self.timeouts.run_s) as budget:
                try:
                    return await self._execute(budget)
                except _RunFailed as failed:
                    await self.finish_error(failed.error)
                    return "error"
                except TrendflowError as exc:
                    await self.finish_error(exc)
                    return "error"
        except TimeoutError:
            if not budget.expired():
                raise
        await self.finish_error(
            TimeoutExceeded(
                f"the run took longer than {self.timeouts.run_s:g} s", run_id=self.run_id
            )
        )
        return "error"

    async def _execute(self, budget: asyncio.Timeout) -> str:
        try:
            profile = ProfileConfig.parse(self.run.profile_config)
            classes = {c.name: get_component(c.name) for c in profile.enabled}
            layers = dependency_layers(classes)
        except TrendflowError as exc:
            raise _RunFailed(exc) from exc
        self.manifest = await self._open_manifest(profile, classes)
        await self._save()
        done = finished_components(self.manifest)
        required = {c.name: c.required for c in profile.enabled}
        params = {c.name: dict(c.params) for c in profile.enabled}
        if set(classes) - done:
            summary = await self._prepare(profile)
            self.timeouts = resolve_timeouts(self.rt, summary.info.duration_s)
            loop = asyncio.get_running_loop()
            budget.reschedule(loop.time() + self.timeouts.run_s - self._elapsed())
            self.manifest.video = VideoSection.from_info(summary.info)
            await self._save()
            for layer in layers:
                todo = [n for n in layer if n not in done]
                if todo:
                    await self._run_layer(todo, classes, required, params, summary)
        return await self.finish_ok()

    def _elapsed(self) -> float:
        return time.time() - self._t0 if hasattr(self, "_t0") else 0.0

    async def _prepare(self, profile: ProfileConfig) -> PreparedSummary:
        await self._stage("segmenting")
        self._t0 = time.time()
        self.s._segment_starts.setdefault(self.run_id, time.time())
        self.sampling = (profile.sampling.fps, profile.sampling.height)
        return await self._prepare_video()

    async def _prepare_video(self) -> PreparedSummary:
        """Fetch and prepare the video on a Segmenter actor (again after one lost it)."""
        assert self.sampling is not None
        fps, height = self.sampling
        deadline = time.monotonic() + self.timeouts.segment_s

        async def call() -> PreparedSummary:
            self.segmenter = self.s._pools.segmenter()
            return await _await_ref(
                self.segmenter.prepare.remote(self.run_id, self.run.source, fps, height),
                deadline - time.monotonic(),
            )

        try:
            return await self._with_retries(call, what="segmenter")
        except TimeoutError:
            raise _RunFailed(
                TimeoutExceeded(
                    f"download and segmentation took longer than {self.timeouts.segment_s:g} s",
                    stage="segmenting",
                )
            ) from None
        except TrendflowError as exc:
            raise _RunFailed(exc) from exc

    async def _with_retries(
        self,
        call: Callable[[], Awaitable[T]],
        *,
        what: str,
        on_oom: Callable[[], Awaitable[None]] | None = None,
        state: _ComponentState | None = None,
    ) -> T:
        attempt = 0
        waits = 0
        while True:
            try:
                return await call()
            except ActorUnavailableError as exc:
                if isinstance(exc, ray.exceptions.RayTaskError):
                    # The task ran, and an input's producer is the actor restarting (Ray tried
                    # to rebuild a lost chunk or track from it): that input is lost.
                    raise _InputLost(f"{what}: {str(exc).splitlines()[-1][:200]}") from exc
                # The actor called is restarting (its node died, or its process and Ray has
                # not brought it back yet): waited for, without using up the retry budget;
                # the caller's deadline (the call's timeout) bounds the wait.
                log.warning("%s of run %s: actor unavailable (%s); waiting for it", what,
                            self.run_id, str(exc).splitlines()[0][:200])
                await asyncio.sleep(backoff_s(waits, self.rt))
                waits += 1
                continue
            except _WORKER_LOST as exc:
                error: BaseException = exc
                lost = True
            except TaskCancelledError:
                raise asyncio.CancelledError from None
            except ObjectLostError as exc:  # also a RayTaskError(ObjectLostError) of the task
                cause = _ray_error(exc)
                raise _InputLost(
                    f"{what}: {type(cause).__name__}: {str(cause).splitlines()[0][:200]}"
                ) from exc
            except Exception as exc:
                error = _ray_error(exc)
                lost = False
            halvings = state.halvings if state else 0
            verdict = decide(
                error, attempt=attempt, halvings=halvings, settings=self.rt, worker_lost=lost
            )
            code = getattr(error, "code", "worker_lost" if lost else "internal_error")
            get_metrics().error(code if not lost else "transient_error")
            match verdict:
                case Verdict.FAIL:
                    if isinstance(error, OutOfMemory):
                        raise error
                    if lost:
                        raise TransientError(
                            f"{what}: worker lost {attempt + 1} times; giving up", what=what
                        ) from error
                    raise error
                case Verdict.HALVE_BATCH:
                    if state is not None:
                        state.halvings += 1
                    if on_oom is not None:
                        await on_oom()
                case Verdict.RETRY:
                    pass
            log.warning("%s of run %s failed (%s); retrying", what, self.run_id, code)
            await asyncio.sleep(backoff_s(attempt, self.rt))
            attempt += 1

    async def _run_layer(
        self,
        names: list[str],
        classes: Mapping[str, type[Component]],
        required: Mapping[str, bool],
        params: Mapping[str, dict[str, Any]],
        summary: PreparedSummary,
    ) -> None:
        assert self.manifest is not None
        await self._stage("analysing:" + ",".join(names))
        states: dict[str, _ComponentState] = {}
        for name in names:
            cls = classes[name]
            deps = {d: await load_outputs(self.s._store, self.identity, d) for d in cls.DEPENDS_ON}
            ctx = build_context(
                cls,
                info=summary.info,
                meta=summary.meta,
                timeline=summary.timeline,
                audio=None,  # travels as its own ref; the worker attaches it
                dependencies=deps,
                model=self.manifest.components[name].model,
                policy=self.s._settings.retention.model_dump(),
            )
            state = _ComponentState(
                name=name,
                cls=cls,
                required=required[name],
                spec=ComponentSpec(run_id=self.run_id, component=name, params=params[name]),
                ctx_ref=ray.put(ctx),
                started_at=utc_now(),
                deadline=time.monotonic() + self.timeouts.component_s,
                limiter=_Limiter(self.rt.chunks_in_flight),
            )
            states[name] = state
            record_running(self.manifest, name, state.started_at)
            await self._db_component(name, self.manifest.components[name])
            if Input.AUDIO in cls.INPUTS and self.audio_ref is None:
                self.audio_ref = self.segmenter.audio.remote(self.run_id)
        await self._save()
        framed = [s for s in states.values() if s.cls.frame_based()]
        if framed:
            await self._map_chunks(framed, summary)
        # A required component that failed while mapping fails the run now (fail fast).
        for state in states.values():
            if state.failed is not None and state.required:
                await self._finish_component(state)
        for state in states.values():
            if state.failed is None:
                await self._reduce(state)
            await self._finish_component(state)

    async def _map_chunks(self, states: list[_ComponentState], summary: PreparedSummary) -> None:
        indices = union_indices(
            [component_indices(s.cls, summary.timeline) for s in states]  # type: ignore[misc]
        )
        in_flight: deque[tuple[Any, list[asyncio.Task[None]]]] = deque()
        # Chunks are numbered in stream order (deterministic for a prepared video); partials
        # are keyed by that position, and a stream resumed after a lost Segmenter skips the
        # chunks already taken. Those stay valid: their objects belong to this actor.
        position = 0
        stream: tuple[Any, Any] | None = None  # (generator, its async iterator)

        def required_failed() -> bool:
            return any(s.failed is not None and s.required for s in states)

        async def retire_oldest() -> None:
            _chunk_ref, tasks = in_flight.popleft()
            # Its last consumer is done; dropping the ref lets Ray's reference counting free
            # it (at the raylet's next batched free: free_objects_period_milliseconds).
            await asyncio.gather(*tasks)

        self.lost_chunks.clear()
        try:
            while True:
                # Take the next chunk only when there is room: with the generator's
                # backpressure of one, at most chunks_in_flight + 1 chunks exist at a time.
                while len(in_flight) >= self.rt.chunks_in_flight:
                    await retire_oldest()
                if self.lost_chunks:
                    # Chunk objects died with their node: let the other maps finish (they may
                    # lose theirs too), then stream again from the oldest lost chunk.
                    while in_flight:
                        await retire_oldest()
                    position = self._rewind_to_lost_chunks(position)
                    stream = None
                    continue
                live = [s for s in states if s.failed is None]
                if not live or required_failed():
                    break
                if stream is None:
                    gen = self.segmenter.chunks.options(
                        num_returns="streaming", _generator_backpressure_num_objects=1
                    ).remote(self.run_id, indices, position)
                    stream = (gen, gen.__aiter__())
                try:
                    chunk_ref = await self._next_chunk(*stream)
                except StopAsyncIteration:
                    while in_flight and not required_failed():
                        await retire_oldest()
                    if self.lost_chunks and not required_failed():
                        continue  # rewinds above
                    break
                except _SegmenterLost as lost:
                    stream = None
                    await self._segmenter_lost(lost, summary, position)
                    continue
                tasks = [
                    asyncio.get_running_loop().create_task(self._map_one(s, position, chunk_ref))
                    for s in live
                    if position not in s.partials  # mapped before a rewind: kept
                ]
                in_flight.append((chunk_ref, tasks))
                del chunk_ref
                position += 1
            while in_flight and not required_failed():
                await retire_oldest()
        finally:
            for _, tasks in in_flight:
                for task in tasks:
                    task.cancel()

    def _spend_loss_budget(self, cause: BaseException, giving_up: str, **details: Any) -> None:
        """One more loss of the Segmenter or of its objects (with their node), within the run's
        retry budget; past it the run fails with ``transient_error`` (``giving_up``)."""
        verdict = decide(
            cause, attempt=self.segmenter_losses, halvings=0, settings=self.rt, worker_lost=True
        )
        get_metrics().error("transient_error")
        if verdict is not Verdict.RETRY:
            raise _RunFailed(TransientError(giving_up, run_id=self.run_id, **details)) from cause
        self.segmenter_losses += 1

    def _count_input_loss(self, what: str, **details: Any) -> None:
        """One more loss of the Segmenter's objects (``what``) with their node."""
        self._spend_loss_budget(
            _InputLost(what),
            f"{what} of run {self.run_id} were lost with their node "
            f"{self.segmenter_losses + 1} times; giving up",
            **details,
        )

    def _rewind_to_lost_chunks(self, position: int) -> int:
        """The position to stream again from (the oldest lost chunk), within the retry budget.

        Only the components without a partial for a chunk map it again; the stream itself
        resumes on whatever Segmenter holds the run (a lost one is replaced by
        :meth:`_segmenter_lost` when the new stream finds it gone).
        """
        resume = min(self.lost_chunks)
        self._count_input_loss("chunks", chunks=sorted(self.lost_chunks))
        log.warning(
            "chunks %s of run %s were lost with their node; streaming again from chunk %d "
            "(was at %d)", sorted(self.lost_chunks), self.run_id, resume, position,
        )
        self.lost_chunks.clear()
        return resume

    async def _recover_audio(self, lost: _InputLost) -> None:
        """The audio track died with its node: extract it again, on a Segmenter that prepares
        the video again if it no longer holds the run."""
        self._count_input_loss("the audio track")
        log.warning("the audio track of run %s was lost (%s); extracting it again",
                    self.run_id, lost)
        held = await self._with_retries(
            lambda: _await_ref(self.segmenter.holds.remote(self.run_id), None), what="audio"
        )
        if not held:  # a restarted Segmenter: prepare the video there first
            await self._prepare_video()
        self.audio_ref = self.segmenter.audio.remote(self.run_id)

    async def _next_chunk(self, gen: Any, chunks: Any) -> Any:
        """The next chunk's ref from the Segmenter's stream.

        Raises ``StopAsyncIteration`` at its end, :class:`_SegmenterLost` when the Segmenter
        died or restarted (it no longer holds the run), ``_RunFailed`` on a decoding error.
        """
        try:
            chunk_ref = await chunks.__anext__()
            if gen.is_finished():
                # A failed stream ends with one more ref that holds its error: read the task's
                # outcome (a small object) before that ref reaches any worker.
                await _await_ref(gen.completed(), None)
            return chunk_ref
        except (*_WORKER_LOST, ObjectLostError) as exc:  # the actor, or the node under it
            raise _SegmenterLost(str(exc).splitlines()[0]) from exc
        except ray.exceptions.RayTaskError as exc:
            error = _ray_error(exc)
            if isinstance(error, RunNotFound):  # restarted since it prepared the run
                raise _SegmenterLost(error.message) from exc
            raise _RunFailed(as_trendflow_error(error, "segmenter")) from exc

    async def _segmenter_lost(
        self, lost: _SegmenterLost, summary: PreparedSummary, position: int
    ) -> None:
        """Prepare the video again so its chunk stream can resume at ``position``.

        Counts against the run's retry budget like a lost worker; a media error from the new
        preparation fails the run at once.
        """
        self._spend_loss_budget(
            lost,
            f"the Segmenter actor was lost {self.segmenter_losses + 1} times while decoding; "
            "giving up",
        )
        log.warning(
            "the Segmenter lost run %s while decoding (%s); preparing it again to resume at "
            "chunk %d", self.run_id, lost, position,
        )
        await asyncio.sleep(backoff_s(self.segmenter_losses - 1, self.rt))
        again = await self._prepare_video()
        if (again.timeline, again.chunk_frames) != (summary.timeline, summary.chunk_frames):
            raise _RunFailed(
                MediaError(
                    "the video changed between two preparations of the same run "
                    f"({summary.timeline} → {again.timeline}); its chunks cannot be resumed",
                    run_id=self.run_id,
                )
            )
        if self.audio_ref is not None:  # it may have been lost with the old actor
            self.audio_ref = self.segmenter.audio.remote(self.run_id)

    async def _map_one(self, state: _ComponentState, position: int, chunk_ref: Any) -> None:
        if state.failed is not None:
            return
        assert state.limiter is not None

        async def call() -> Any:
            async with state.limiter:  # type: ignore[union-attr]
                worker = self.s._worker_for(state.cls)
                return await _await_ref(
                    worker.map.remote(state.spec, state.ctx_ref, self.audio_ref, chunk_ref),
                    state.deadline - time.monotonic(),
                )

        try:
            partial = await self._with_retries(
                call, what=f"{state.name} map", on_oom=state.limiter.halve, state=state
            )
        except _InputLost:
            self.lost_chunks.add(position)  # _map_chunks streams it again
            return
        except TimeoutError:
            self._component_failed(state, self._timeout(state))
            return
        except TrendflowError as exc:
            self._component_failed(state, exc)
            return
        except _RunFailed:
            raise
        except Exception as exc:
            self._component_failed(state, as_trendflow_error(exc, state.name))
            return
        if not (isinstance(partial, str) and partial == SKIPPED):
            state.partials[position] = partial.partial
            state.busy_s += partial.busy_s

    def _timeout(self, state: _ComponentState) -> TimeoutExceeded:
        return TimeoutExceeded(
            f"{state.name} took longer than {self.timeouts.component_s:g} s",
            component=state.name,
        )

    def _component_failed(self, state: _ComponentState, error: TrendflowError) -> None:
        if state.failed is None:
            state.failed = error

    async def _reduce(self, state: _ComponentState) -> None:
        partials = [state.partials[i] for i in sorted(state.partials)]

        async def call() -> ReduceOutcome:
            worker = self.s._worker_for(state.cls)
            return await _await_ref(
                worker.reduce.remote(state.spec, state.ctx_ref, self.audio_ref, *partials),
                state.deadline - time.monotonic(),
            )

        what = f"{state.name} reduce"
        try:
            try:
                outcome = await self._with_retries(call, what=what, state=state)
            except _InputLost as lost:
                if self.audio_ref is None:  # the partials live here: only the audio can die
                    raise
                await self._recover_audio(lost)
                outcome = await self._with_retries(call, what=what, state=state)
            state.busy_s += outcome.busy_s
            encode_started = time.perf_counter()
            artifact = await persist_result(
                self.s._store,
                self.identity,
                state.cls,
                outcome.result,
                model=self.manifest.components[state.name].model,  # type: ignore[union-attr]
            )
        except TimeoutError:
            self._component_failed(state, self._timeout(state))
            return
        except _InputLost as lost:
            self._component_failed(state, TransientError(str(lost), component=state.name))
            return
        except Exception as exc:
            self._component_failed(state, as_trendflow_error(_ray_error(exc), state.name))
            return
        state.busy_s += time.perf_counter() - encode_started
        state.outcome = (outcome, artifact)

    async def _finish_component(self, state: _ComponentState) -> None:
        assert self.manifest is not None
        timing = ComponentTiming(
            started_at=state.started_at, finished_at=utc_now(), busy_s=state.busy_s
        )
        get_metrics().component_duration(state.name, timing.duration_ms / 1000)
        if state.failed is not None:
            rec = record_error(self.manifest, state.name, state.failed, timing)
            get_metrics().error(state.failed.code)
            await self._save()
            await self._db_component(state.name, rec)
            if state.required:
                raise _RunFailed(state.failed)
            warning = f"optional component {state.name} failed: {state.failed.code}"
            self.manifest.run.warnings.append(warning)
            async with self.s._db.acquire() as conn:
                await runs_repo.add_run_warning(conn, run_id=self.run.run_id, warning=warning)
            await self._save()
            return
        assert state.outcome is not None
        outcome, artifact = state.outcome
        rec = record_done(
            self.manifest,
            state.name,
            outcome.result,
            artifact,
            timing,
            device_used=outcome.report.device_used,
            peak_ram_mb=outcome.report.peak_ram_mb,
            gpu_memory_mb=outcome.report.gpu_memory_mb,
        )
        await self._save()
        await self._db_component(state.name, rec)

    # -- endings ---------------------------------------------------------------------------------

    def _close_unfinished(self, status: str) -> None:
        """Components left unfinished: ``run_aborted`` errors after a failure (as the local
        runner records them), back to ``pending`` after a cancel."""
        assert self.manifest is not None
        now = utc_now()
        for name, rec in self.manifest.components.items():
            if rec.status not in ("running", "pending"):
                continue
            if status == "error":
                rec.status = "error"
                rec.error = ErrorInfo(
                    code=ABORTED, message="the run ended before this component finished"
                )
                rec.started_at = rec.started_at or now
                rec.finished_at = now
                rec.artifacts = []
            else:
                self.manifest.components[name] = ComponentRecord.pending(
                    schema_version=rec.schema_version,
                    producer_version=rec.producer_version,
                    required=rec.required,
                    model=rec.model,
                )

    async def _finish(self, status: Ending, error: TrendflowError | None = None) -> str:
        if self.manifest is not None:
            self._close_unfinished(status)
            self.manifest.run.status = status  # type: ignore[assignment]
            self.manifest.run.error = (
                None if error is None else ErrorInfo(code=error.code, message=error.message)
            )
            self.manifest.run.finished_at = utc_now()
            await self._save()
            for name, rec in self.manifest.components.items():
                if rec.status == "pending" or (rec.error and rec.error.code == ABORTED):
                    await self._db_component(name, rec)
        async with self.s._db.acquire() as conn:
            await end_run(conn, run_id=self.run.run_id, status=status, error=error)
        return status

    async def finish_ok(self) -> str:
        return await self._finish("ok")

    async def finish_error(self, error: TrendflowError) -> None:
        await self._finish("error", error)

    async def finish_cancelled(self) -> None:
        await self._finish("cancelled")

    async def release(self) -> None:
        """Free what the run holds on other actors (prepared files, component instances)."""
        if self.segmenter is not None:
            with contextlib.suppress(Exception):
                await _await_ref(self.segmenter.release.remote(self.run_id), 30.0)
        for worker in self.s._pools.cpu + list(self.s._pools.gpu.values()):
            with contextlib.suppress(Exception):
                worker.release.remote(self.run_id)
        self.audio_ref = None


async def _footprint(conn: Any, run_id: str, profile_config: Mapping[str, Any]) -> PendingRun:
    """A queued run as plan_batches sees it: one task per enabled component."""
    profile = ProfileConfig.parse(profile_config)
    names = [c.name for c in profile.enabled]
    reqs = await catalog.get_resource_requirements(conn, component_names=names)
    return PendingRun(
        run_id=run_id,
        tasks=tuple(
            TaskDemand(
                component=n,
                cpus=float(reqs[n].cpu_cores_per_task),
                memory_mb=reqs[n].memory_per_task,
                gpu_memory_mb=reqs[n].gpu_memory_per_task,
            )
            for n in names
        ),
    )


def scheduler_options(rt: RuntimeSettings) -> dict[str, Any]:
    """Ray options of the scheduler: named, detached, restartable, no CPU held."""
    return {
        "name": rt.scheduler_name,
        "namespace": rt.namespace,
        "lifetime": "detached",
        "max_restarts": rt.scheduler_max_restarts,
        "max_task_retries": -1,
        "max_concurrency": 16,
        "num_cpus": 0,
        "get_if_exists": True,
        **({"resources": dict(rt.scheduler_resources)} if rt.scheduler_resources else {}),
    }


def start_scheduler(settings: Settings, *, timeout_s: float = 120.0) -> Any:
    """Create (or find) the scheduler actor and wait until it is serving; returns its handle."""
    # Any: Ray's typed handle shows actor methods as plain methods (no ``.remote``).
    handle: Any = (
        ray.remote(Scheduler).options(**scheduler_options(settings.runtime)).remote(settings)
    )
    ray.get(handle.ready.remote(timeout_s), timeout=timeout_s + 10)
    return handle


def get_scheduler(settings: Settings) -> Any:
    """The running scheduler's handle; :class:`ConfigError` if there is none."""
    try:
        return ray.get_actor(settings.runtime.scheduler_name, namespace=settings.runtime.namespace)
    except ValueError:
        raise ConfigError(
            f"no scheduler actor {settings.runtime.scheduler_name!r} in namespace "
            f"{settings.runtime.namespace!r}; start it with trendflow.actors.scheduler."
            "start_scheduler (docs/runtime.md)"
        ) from None


__all__ = ["Scheduler", "get_scheduler", "scheduler_options", "start_scheduler"]
