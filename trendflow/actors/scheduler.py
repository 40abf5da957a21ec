"""The scheduler actor: takes queued runs from the ``runs`` table and drives them to the end.

One named, detached actor per cluster (``runtime.scheduler_name`` in ``runtime.namespace``),
restarted by Ray when its process dies (``max_restarts``). Its loop runs on its own event-loop
thread, started in ``__init__``, so a restarted scheduler resumes by itself:

0. **Warming** — before it reports ready, the worker pools are started and warmed
   (:meth:`~trendflow.actors.pools.Pools.warm`, ``runtime.warm_workers``): every worker a run
   can need exists and has initialised its components, so the first run is not a cold one.
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

4. **Watchdog** — the heartbeat of the runs executing here, and a sweep that re-queues (or
   fails ``execution_lost``) any ``running`` run whose execution is gone
   (:mod:`trendflow.actors.watchdog`); a run's ending survives a failing store
   (:mod:`trendflow.actors.ending`).

Failure rules are :mod:`trendflow.actors.policy`. Cancelling a run stops its work and keeps what
finished. See ``docs/runtime.md`` for operating it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ray

from trendflow.actors import watchdog
from trendflow.actors.ending import close_stored_manifest
from trendflow.actors.execution import RunExecution, RunServices
from trendflow.actors.planning import Capacity, PendingRun, TaskDemand, plan_batches
from trendflow.actors.pools import Pools
from trendflow.contracts.profile import ProfileConfig
from trendflow.db.pool import Database, open_database
from trendflow.db.repositories import catalog
from trendflow.db.repositories import runs as runs_repo
from trendflow.errors import ConfigError, RunUnschedulable, TimeoutExceeded, TrendflowError
from trendflow.metrics import get_metrics, sample_gpu_utilization
from trendflow.pipeline.execution import as_trendflow_error
from trendflow.runs import end_run
from trendflow.settings import RuntimeSettings, Settings
from trendflow.storage.factory import open_store

log = logging.getLogger(__name__)

@dataclass(slots=True)
class _Active:
    run_id: str
    footprint: PendingRun
    task: asyncio.Task[None] | None = None
    cancel_requested: bool = False


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
        self._segment_starts: dict[str, float] = {}
        self._pools: Pools | None = None  # set by the loop once it has started the actors
        # What warming the pools did (Pools.warm), or {"state": "off"}; None while starting.
        self._warm: dict[str, Any] | None = None
        # Opened by the loop (_serve) before it takes any run; used only after that.
        self._db: Database
        self._services: RunServices
        self._watchdog: asyncio.Task[None]
        self._wakeup = asyncio.Event()
        self._main = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)

    # -- public actor methods (called through Ray from any thread) ------------------------------

    def ready(self, timeout_s: float = 120.0) -> dict[str, Any]:
        """Block until the loop has opened the database, started its actors and warmed them
        (``runtime.warm_workers``); a worker that failed to warm raises here."""
        if not self._started.wait(timeout_s):
            raise TimeoutExceeded(f"scheduler did not start within {timeout_s} s")
        if self._start_error is not None:
            raise self._start_error
        return self.describe()

    def describe(self) -> dict[str, Any]:
        """Incarnation, worker actor names, warming, active runs (for operators and tests)."""
        return {
            "incarnation": self._incarnation,
            "worker_id": self._worker_id,
            "actors": {} if self._pools is None else dict(self._pools.names),
            "warm": self._warm,
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
        try:
            self._db = await open_database(self._settings, migrate=False)
            self._pools = Pools.start(self._settings, self._incarnation)
            self._services = RunServices(db=self._db, store=open_store(self._settings),
                                         pools=self._pools,
                                         settings=self._settings,
                                         segment_starts=self._segment_starts)
            async with self._db.acquire() as conn:
                if self._rt.warm_workers:
                    self._warm = await self._pools.warm(conn)
                    log.info("worker pools warm in %.1f s", self._warm["seconds"])
                else:
                    self._warm = {"state": "off"}
                requeued = await runs_repo.requeue_interrupted(conn)
            if requeued:
                log.info("requeued %d interrupted runs", requeued)
        except BaseException as exc:  # reported by ready()
            self._start_error = exc
            self._started.set()
            raise
        self._started.set()
        self._watchdog = self._loop.create_task(self._watch(), name="watchdog")
        while not self._stopping:
            try:
                await self._tick()
            except Exception:
                log.exception("scheduler tick failed; retrying after the poll interval")
                get_metrics().error("internal_error")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._rt.poll_interval_s)
            self._wakeup.clear()

    async def _watch(self) -> None:
        """Heartbeats of the runs executing here, and the sweep for runs whose execution is
        gone (:mod:`trendflow.actors.watchdog`), every ``heartbeat_interval_s``."""
        while not self._stopping:
            try:
                for run_id in await watchdog.beat(self._db, worker_id=self._worker_id,
                                                  run_ids=list(self._active)):
                    active = self._active.get(run_id)
                    if active is not None and active.task is not None:
                        log.warning("run %s is no longer this scheduler's; stopping it", run_id)
                        active.task.cancel()  # not a user's cancel: the run's row is left alone
                requeued, _ = await watchdog.sweep(self._db, self._services.store, self._rt,
                                                   active=list(self._active))
                if requeued:
                    self._wakeup.set()
            except Exception:
                log.exception("watchdog round failed; retrying after the heartbeat interval")
            await asyncio.sleep(self._rt.heartbeat_interval_s)

    async def _shutdown(self) -> None:
        self._watchdog.cancel()
        for active in list(self._active.values()):
            if active.task is not None:
                active.task.cancel()
        tasks = [a.task for a in self._active.values() if a.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._db.close()

    # -- admission -------------------------------------------------------------------------------

    def _total_capacity(self) -> Capacity:
        res = ray.cluster_resources()
        gpus = int(res.get("GPU", 0))
        return Capacity(
            cpus=self._rt.planning_cpus or float(res.get("CPU", 0)),
            memory_mb=self._rt.planning_memory_mb or int(res.get("memory", 0) // 2**20),
            gpu_free_mb={f"gpu{i}": self._services.pools.gpu_total_mb for i in range(gpus)},
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
        # Its manifest says it too, also without an execution here (queued, or running
        # without one); a no-op when the execution closed it.
        try:
            await close_stored_manifest(self._db, self._services.store, self._rt, run)
        except TrendflowError as exc:
            log.error("run %s ended %s, but its manifest could not be closed: %s",
                      run_id, run.status, exc)
        return run.status

    # -- one run ---------------------------------------------------------------------------------

    async def _drive(self, run: runs_repo.Run, active: _Active) -> None:
        run_id = str(run.run_id)
        execution = RunExecution(self._services, run)
        try:
            await execution.execute()
        except asyncio.CancelledError:
            if active.cancel_requested:
                await execution.finish_cancelled()
            # else: the scheduler is stopping; the run stays `running` and is requeued on start
        except Exception as exc:
            log.exception("run %s crashed in the scheduler", run_id)
            try:
                await execution.finish_error(as_trendflow_error(exc, "scheduler"))
            except Exception:
                log.exception("run %s could not be ended; the watchdog takes it once its "
                              "heartbeat is %g s old", run_id, self._rt.heartbeat_timeout_s)
        finally:
            self._active.pop(run_id, None)
            await execution.release()
            self._wakeup.set()


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
    """Create (or find) the scheduler actor and wait until it is serving (its pools warm,
    unless ``runtime.warm_workers`` is off: ``timeout_s`` plus ``runtime.warm_timeout_s``);
    returns its handle."""
    rt = settings.runtime
    timeout_s += rt.warm_timeout_s if rt.warm_workers else 0.0
    # Any: Ray's typed handle shows actor methods as plain methods (no ``.remote``).
    handle: Any = ray.remote(Scheduler).options(**scheduler_options(rt)).remote(settings)
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
