"""One run's execution in the scheduler's loop: prepare the video on a Segmenter, run each
dependency layer of components over the streamed chunks, persist the results, end the run.

It receives what it uses explicitly (:class:`RunServices`) and holds only its run's state. The
rules are shared: the manifest's lifecycle and each component step are
:mod:`trendflow.pipeline.execution` (as in the local runner), what a Ray failure means is
:mod:`trendflow.actors.policy`, and the run ends through :func:`trendflow.runs.end_run`. A lost
worker, Segmenter, chunk or audio track is recovered within the run's retry budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import ray

from trendflow.actors.calls import Limiter, await_ref
from trendflow.actors.ending import end_execution, save_retrying
from trendflow.actors.policy import (
    Failure,
    Timeouts,
    Verdict,
    backoff_s,
    classify,
    decide,
    resolve_timeouts,
    task_error,
)
from trendflow.actors.pools import Pools
from trendflow.actors.rendering import render_stage
from trendflow.actors.segmenter import PreparedSummary
from trendflow.actors.workers import ComponentSpec, ReduceOutcome
from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.keys import manifest_key
from trendflow.contracts.manifest import (
    ComponentRecord,
    Manifest,
    VideoSection,
    load_manifest,
    utc_now,
)
from trendflow.contracts.profile import ModelRef, ProfileConfig
from trendflow.db.pool import Database
from trendflow.db.repositories import components as rc_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.db.repositories import videos as videos_repo
from trendflow.errors import (
    ArtifactNotFound,
    ComponentError,
    MediaError,
    OutOfMemory,
    RunNotFound,
    TimeoutExceeded,
    TransientError,
    TrendflowError,
)
from trendflow.metrics import get_metrics
from trendflow.pipeline.components.base import Component, Input
from trendflow.pipeline.components.registry import get_component
from trendflow.pipeline.execution import (
    ComponentTiming,
    as_trendflow_error,
    build_context,
    check_dependencies,
    dependency_layers,
    finished_components,
    load_outputs,
    new_manifest,
    persist_result,
    record_done,
    record_error,
    record_optional_failure,
    record_running,
    reopen_manifest,
    union_of,
)
from trendflow.runs import Ending
from trendflow.runs.priced import check_priced
from trendflow.settings import Settings
from trendflow.storage.base import ResultStore

log = logging.getLogger(__name__)
T = TypeVar("T")


class _SegmenterLost(Exception):
    """A run's chunk stream broke because its Segmenter actor died or restarted (internal)."""


class _InputLost(Exception):
    """An object a task needed (a chunk, the audio track) is gone: the node that held it died
    with its object store, and Ray cannot rebuild it (internal)."""


class _RunFailed(Exception):
    def __init__(self, error: TrendflowError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True, slots=True)
class RunServices:
    """What a run's execution uses of the scheduler's, passed to it explicitly."""

    db: Database
    store: ResultStore
    pools: Pools
    settings: Settings
    segment_starts: dict[str, float]  # run → when its Segmenter was first asked (benchmarks)


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
    limiter: Limiter | None = None
    outcome: tuple[ReduceOutcome, Any] | None = None


class RunExecution:
    """One run while it executes; lives inside the scheduler's loop."""

    def __init__(self, services: RunServices, run: runs_repo.Run) -> None:
        self.s = services
        self.rt = services.settings.runtime
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
        self.t0: float | None = None  # when preparing the video began

    async def _save(self) -> None:
        assert self.manifest is not None
        await save_retrying(self.s.store, self.manifest, self.rt)

    async def _db_component(self, name: str, rec: ComponentRecord) -> None:
        async with self.s.db.acquire() as conn:
            await rc_repo.record_component(conn, run_id=self.run.run_id, name=name, record=rec)

    async def _record_video(self, video: VideoSection) -> None:
        """The probed facts into the video's row, as a rebuild from the manifest writes them.

        The run's row is locked first: a deletion of the video, which locks its runs, either
        waits for this or has removed the run (``run_not_found``), never a row written back.
        """
        async with self.s.db.acquire() as conn, conn.transaction():
            await runs_repo.get_run(conn, run_id=self.run.run_id, for_update=True)
            await videos_repo.upsert_video(
                conn, platform_id=self.run.platform_id, video_id=self.run.video_id,
                **videos_repo.probe_columns(video),
            )

    async def _stage(self, stage: str) -> None:
        async with self.s.db.acquire() as conn:
            await runs_repo.set_run_stage(conn, run_id=self.run.run_id, stage=stage)

    async def _open_manifest(
        self, profile: ProfileConfig, classes: Mapping[str, type[Component]]
    ) -> Manifest:
        """The run's manifest: the one an earlier incarnation left, reopened, or a new one."""
        key = manifest_key(self.run.platform_id, self.run.video_id, self.run_id)
        try:
            manifest = reopen_manifest(await load_manifest(self.s.store, key))
        except ArtifactNotFound:
            mapping = {
                name: ModelRef.parse(ref) for name, ref in (self.run.model_mapping or {}).items()
            }
            return new_manifest(
                self.identity, classes, {c.name: c.required for c in profile.enabled}, mapping,
                profile_id=self.run.profile_id,
                user_id=None if self.run.user_id is None else str(self.run.user_id),
                profile_config=self.run.profile_config,
                source=self.run.source,
                created_at=self.run.created_at,
            )
        # One written before the manifest recorded them gets them now (the row is the record).
        manifest.run.profile_config = manifest.run.profile_config or dict(self.run.profile_config)
        manifest.run.source = manifest.run.source or dict(self.run.source)
        return manifest

    async def execute(self) -> str:
        try:
            async with asyncio.timeout(self.timeouts.run_s) as budget:
                try:
                    return await self._execute(budget)
                except (_RunFailed, TrendflowError) as exc:
                    await self.finish_error(exc.error if isinstance(exc, _RunFailed) else exc)
                    return "error"
        except TimeoutError:
            if not budget.expired():
                raise
        await self.finish_error(TimeoutExceeded(
            f"the run took longer than {self.timeouts.run_s:g} s", run_id=self.run_id))
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
            # Never analysed for less than the fetched video's price: refused, nothing charged
            # (trendflow.runs.priced; execute() ends the run with the error).
            check_priced(self.run.priced_video, summary.info)
            self.timeouts = resolve_timeouts(self.rt, summary.info.duration_s)
            loop = asyncio.get_running_loop()
            budget.reschedule(loop.time() + self.timeouts.run_s - self._elapsed())
            self.manifest.video = VideoSection.from_info(summary.info)
            await self._save()
            await self._record_video(self.manifest.video)
            for layer in layers:
                todo = [n for n in layer if n not in done]
                if todo:
                    await self._run_layer(todo, classes, required, params, summary)
        elif self.manifest.video is not None:  # an earlier incarnation probed it
            await self._record_video(self.manifest.video)
        await render_stage(self.s, self.run, profile, budget)
        return await self.finish_ok()

    def _elapsed(self) -> float:
        return 0.0 if self.t0 is None else time.time() - self.t0

    async def _prepare(self, profile: ProfileConfig) -> PreparedSummary:
        await self._stage("segmenting")
        self.t0 = time.time()
        self.s.segment_starts.setdefault(self.run_id, time.time())
        self.sampling = (profile.sampling.fps, profile.sampling.height)
        return await self._prepare_video()

    async def _prepare_video(self) -> PreparedSummary:
        """Fetch and prepare the video on a Segmenter actor (again after one lost it)."""
        assert self.sampling is not None
        fps, height = self.sampling
        deadline = time.monotonic() + self.timeouts.segment_s

        async def call() -> PreparedSummary:
            self.segmenter = self.s.pools.segmenter()
            return await await_ref(
                self.segmenter.prepare.remote(self.run_id, self.run.source, fps, height),
                deadline - time.monotonic(),
            )

        try:
            return await self._with_retries(call, what="segmenter")
        except TimeoutError:
            raise _RunFailed(TimeoutExceeded(
                f"download and segmentation took longer than {self.timeouts.segment_s:g} s",
                stage="segmenting")) from None
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
            except Exception as exc:
                raised, failure = exc, classify(exc)
            match failure.kind:
                case Failure.RESTARTING:
                    # The actor called is restarting (its node died, or its process and Ray
                    # has not brought it back yet): waited for, without using up the retry
                    # budget; the caller's deadline (the call's timeout) bounds the wait.
                    log.warning("%s of run %s: actor unavailable (%s); waiting for it", what,
                                self.run_id, str(raised).splitlines()[0][:200])
                    await asyncio.sleep(backoff_s(waits, self.rt))
                    waits += 1
                    continue
                case Failure.CANCELLED:
                    raise asyncio.CancelledError from None
                case Failure.INPUT_LOST:
                    cause = failure.error
                    raise _InputLost(f"{what}: {type(cause).__name__}: "
                                     f"{str(cause).splitlines()[0][:200]}") from raised
            error, lost = failure.error, failure.kind is Failure.WORKER_LOST
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
        async with self.s.db.acquire() as conn:
            await self.s.pools.prepare(conn, [classes[n] for n in names])
        states: dict[str, _ComponentState] = {}
        for name in names:
            cls = classes[name]
            state = states[name] = _ComponentState(
                name=name,
                cls=cls,
                required=required[name],
                spec=ComponentSpec(run_id=self.run_id, component=name, params=params[name]),
                started_at=utc_now(),
                deadline=time.monotonic() + self.timeouts.component_s,
                limiter=Limiter(self.rt.chunks_in_flight),
            )
            record_running(self.manifest, name, state.started_at)
            await self._db_component(name, self.manifest.components[name])
            try:
                check_dependencies(self.manifest, cls)
            except ComponentError as exc:  # an optional dependency failed
                state.failed = exc
                continue
            deps = {d: await load_outputs(self.s.store, self.identity, d) for d in cls.DEPENDS_ON}
            state.ctx_ref = ray.put(build_context(
                cls,
                info=summary.info,
                meta=summary.meta,
                timeline=summary.timeline,
                audio=None,  # travels as its own ref; the worker attaches it
                dependencies=deps,
                model=self.manifest.components[name].model,
                policy=self.s.settings.retention.model_dump(),
            ))
            if Input.AUDIO in cls.INPUTS and self.audio_ref is None:
                self.audio_ref = self.segmenter.audio.remote(self.run_id)
        await self._save()
        # As the local runner: a required component that cannot run fails the run now, those
        # that read no frames finish before any chunk is decoded, then the frame-based ones map
        # (a required one failing while mapping fails the run at once) and reduce.
        for state in states.values():
            if state.failed is not None and state.required:
                await self._finish_component(state)
        framed = [s for s in states.values() if s.cls.frame_based()]
        for state in states.values():
            if not state.cls.frame_based():
                await self._reduce_and_finish(state)
        if live := [s for s in framed if s.failed is None]:
            await self._map_chunks(live, summary)
        for state in framed:
            if state.failed is not None and state.required:
                await self._finish_component(state)
        for state in framed:
            await self._reduce_and_finish(state)

    async def _reduce_and_finish(self, state: _ComponentState) -> None:
        if state.failed is None:
            await self._reduce(state)
        await self._finish_component(state)

    async def _map_chunks(self, states: list[_ComponentState], summary: PreparedSummary) -> None:
        indices = union_of({s.name: s.cls for s in states}, summary.timeline)
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
            lambda: await_ref(self.segmenter.holds.remote(self.run_id), None), what="audio"
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
                await await_ref(gen.completed(), None)
            return chunk_ref
        except StopAsyncIteration:
            raise
        except Exception as exc:
            failure = classify(exc)
            if failure.kind is Failure.CANCELLED:
                raise asyncio.CancelledError from None
            if failure.kind is not Failure.ERROR:  # the actor, or the node under it
                raise _SegmenterLost(str(exc).splitlines()[0]) from exc
            if isinstance(failure.error, RunNotFound):  # restarted since it prepared the run
                raise _SegmenterLost(failure.error.message) from exc
            raise _RunFailed(as_trendflow_error(failure.error, "segmenter")) from exc

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
                worker = self.s.pools.worker_for(state.cls)
                return await await_ref(
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
        if partial is not None:  # None: the chunk held none of its frames
            state.partials[position] = partial.partial
            state.busy_s += partial.busy_s

    def _timeout(self, state: _ComponentState) -> TimeoutExceeded:
        return TimeoutExceeded(f"{state.name} took longer than {self.timeouts.component_s:g} s",
                               component=state.name)

    def _component_failed(self, state: _ComponentState, error: TrendflowError) -> None:
        if state.failed is None:
            state.failed = error

    async def _reduce(self, state: _ComponentState) -> None:
        partials = [state.partials[i] for i in sorted(state.partials)]

        async def call() -> ReduceOutcome:
            worker = self.s.pools.worker_for(state.cls)
            return await await_ref(
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
                self.s.store,
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
            self._component_failed(state, as_trendflow_error(task_error(exc), state.name))
            return
        state.busy_s += time.perf_counter() - encode_started
        state.outcome = (outcome, artifact)

    async def _finish_component(self, state: _ComponentState) -> None:
        assert self.manifest is not None
        timing = ComponentTiming(state.started_at, utc_now(), busy_s=state.busy_s)
        get_metrics().component_duration(state.name, timing.duration_ms / 1000)
        if state.failed is not None:
            rec = record_error(self.manifest, state.name, state.failed, timing)
            get_metrics().error(state.failed.code)
            await self._save()
            await self._db_component(state.name, rec)
            if state.required:
                raise _RunFailed(state.failed)
            warning = record_optional_failure(self.manifest, state.name, state.failed)
            async with self.s.db.acquire() as conn:
                await runs_repo.add_run_warning(conn, run_id=self.run.run_id, warning=warning)
            await self._save()
            return
        assert state.outcome is not None
        outcome, artifact = state.outcome
        report = outcome.report
        rec = record_done(self.manifest, state.name, outcome.result, artifact, timing,
                          device_used=report.device_used, peak_ram_mb=report.peak_ram_mb,
                          gpu_memory_mb=report.gpu_memory_mb)
        await self._save()
        await self._db_component(state.name, rec)

    async def _finish(self, status: Ending, error: TrendflowError | None = None) -> str:
        # Always ends the run, even when its last manifest write fails (actors/ending.py).
        return await end_execution(self.s.db, self.s.store, self.rt, self.manifest,
                                   self.run.run_id, status, error)

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
                await await_ref(self.segmenter.release.remote(self.run_id), 30.0)
        for worker in self.s.pools.workers():
            with contextlib.suppress(Exception):
                worker.release.remote(self.run_id)
        self.audio_ref = None


