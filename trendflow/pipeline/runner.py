"""The local runner: one video, a list of components, NPZ + manifest into a result store.

Pure Python, no Ray: the reference that the Ray runtime (``trendflow.actors``) must match — the
same input gives identical arrays. Both use :mod:`trendflow.pipeline.execution` for everything
that decides a result (sampling, contexts, dependency order, encoding, manifest records). The
flow:

1. ``Segmenter.prepare`` (fetch, probe, validate, repair) → the manifest's ``video`` section;
2. components run in dependency layers (:func:`dependency_layers`). Inside a layer, components
   that do not read frames are set up and reduced directly; the frame-based ones share **one
   decode** of the union of their ``frame_indices`` (``Segmenter.iter_chunks``), each mapping its
   own part of every chunk (:func:`select_chunk`) before its ``reduce``;
3. every result is encoded and written at its ``artifact_key``; the manifest is rewritten after
   every component (and at every run stage).

A failed **required** component fails the run at once (fail fast): components that had not
finished are marked ``error`` with code ``run_aborted``. A failed **optional** component leaves a
warning and the run ``ok``. Segmenter errors (``video_too_short`` …, also when decoding fails
part-way) end the run as ``error`` with that code. :func:`run_local` records these failures in
the manifest and returns it; it raises only for an invalid profile (before anything is written)
or when the store itself fails.

Per component the manifest records ``duration_ms`` = the component's own work (setup, every
map, reduce, encoding — not the decode it shares with others), ``device_used = "cpu"`` and
``peak_ram_mb`` = the highest resident set size of this process sampled after each of the
component's calls. The CPU work runs on the calling thread (this is the CLI / job / test path).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import psutil

from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.manifest import (
    ComponentRecord,
    Manifest,
    RunError,
    VideoSection,
    save_manifest,
    utc_now,
)
from trendflow.contracts.profile import ModelRef, ProfileConfig
from trendflow.errors import InvalidProfile, StorageError, TrendflowError
from trendflow.pipeline.components.base import (
    Component,
    ComponentContext,
    Input,
    select_chunk,
)
from trendflow.pipeline.components.registry import get_component
from trendflow.pipeline.execution import (
    ABORTED,
    ComponentTiming,
    as_trendflow_error,
    build_context,
    check_dependencies,
    dependency_layers,
    end_manifest,
    load_outputs,
    new_manifest,
    persist_result,
    record_done,
    record_error,
    record_optional_failure,
    record_running,
    union_of,
)
from trendflow.pipeline.frames_archive import archive_chunk
from trendflow.pipeline.segmenter import PreparedVideo, Segmenter, VideoSource
from trendflow.pipeline.types import AudioTrack
from trendflow.settings import Settings, get_settings
from trendflow.storage.base import ResultStore

log = logging.getLogger(__name__)

T = TypeVar("T")
_MB = 1024 * 1024


@dataclass(slots=True)
class PlannedComponent:
    """A component instance of a run and whether its failure fails the run."""

    component: Component
    required: bool = True

    @property
    def name(self) -> str:
        return self.component.NAME


def plan_components(
    profile: ProfileConfig | Sequence[Component | PlannedComponent],
) -> list[PlannedComponent]:
    """The run's components: a profile's enabled ones (with params), or given instances.

    Bare instances are required. Unknown names raise ``component_not_found``; params the
    component does not declare, and duplicates, ``invalid_profile``.
    """
    if isinstance(profile, ProfileConfig):
        planned = [
            PlannedComponent(get_component(c.name)(**c.params), c.required)
            for c in profile.enabled
        ]
    else:
        planned = [p if isinstance(p, PlannedComponent) else PlannedComponent(p) for p in profile]
    names = [p.name for p in planned]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidProfile(f"components listed more than once: {dupes}", components=dupes)
    if not planned:
        raise InvalidProfile("a run needs at least one component")
    return planned


@dataclass(slots=True)
class _Live:
    """One component while the run executes it."""

    planned: PlannedComponent
    started_at: datetime | None = None
    ctx: ComponentContext | None = None
    partials: list[Any] = field(default_factory=list)
    busy_s: float = 0.0
    peak_rss: int = 0
    done: bool = False


class _Run:
    """The state of one :func:`run_local` call: the manifest, the store, the live components."""

    def __init__(
        self,
        identity: RunIdentity,
        planned: list[PlannedComponent],
        store: ResultStore,
        settings: Settings,
        model_mapping: Mapping[str, ModelRef],
        services: Mapping[str, Any],
        profile_id: str | None,
        user_id: str | None,
        profile_config: Mapping[str, Any] | None = None,
    ) -> None:
        self.identity = identity
        self.store = store
        self.settings = settings
        self.services = services
        self.process = psutil.Process()
        self.live = {p.name: _Live(p) for p in planned}
        self.failed_required: str | None = None
        self.manifest = new_manifest(
            identity,
            {p.name: type(p.component) for p in planned},
            {p.name: p.required for p in planned},
            model_mapping,
            profile_id=profile_id,
            user_id=user_id,
            profile_config=profile_config,
        )

    async def save(self) -> None:
        await save_manifest(self.store, self.manifest)

    def timed(self, live: _Live, fn: Callable[..., T], *args: Any) -> T:
        """Call ``fn`` on behalf of ``live``, adding to its busy time and peak RSS."""
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            live.busy_s += time.perf_counter() - start
            live.peak_rss = max(live.peak_rss, self.process.memory_info().rss)

    def record(self, name: str) -> ComponentRecord:
        return self.manifest.components[name]

    async def begin(self, live: _Live) -> None:
        live.started_at = utc_now()
        record_running(self.manifest, live.planned.name, live.started_at)
        self.record(live.planned.name).device_used = "cpu"
        await self.save()

    def _observed(self, live: _Live) -> None:
        rec = self.record(live.planned.name)
        rec.duration_ms = round(live.busy_s * 1000)
        rec.device_used = "cpu"
        rec.peak_ram_mb = round(live.peak_rss / _MB, 1)
        live.done = True
        live.partials.clear()

    async def fail(self, live: _Live, exc: BaseException) -> None:
        """Record ``exc`` as the component's error; a required component aborts the run."""
        name = live.planned.name
        error = as_trendflow_error(exc, name)
        log.warning("component %s failed: %s", name, error.code)
        if live.started_at is None:
            live.started_at = utc_now()
        record_error(self.manifest, name, error, ComponentTiming(live.started_at, utc_now()))
        self._observed(live)
        if live.planned.required:
            self.failed_required = self.failed_required or name
        else:
            record_optional_failure(self.manifest, name, error)
        await self.save()

    async def complete(self, live: _Live) -> None:
        """Reduce, encode, store; record the result in the manifest."""
        component = live.planned.component
        cls = type(component)
        model = self.record(cls.NAME).model
        try:
            result = self.timed(live, component.reduce, live.partials)
            live.partials.clear()
            start = time.perf_counter()
            artifact = await persist_result(self.store, self.identity, cls, result, model=model)
            live.busy_s += time.perf_counter() - start
        except StorageError:
            raise
        except Exception as exc:  # a component bug is recorded, not raised: the contract
            await self.fail(live, exc)
            return
        assert live.started_at is not None  # set by begin()
        record_done(
            self.manifest, cls.NAME, result, artifact,
            ComponentTiming(live.started_at, utc_now()),
            device_used="cpu", peak_ram_mb=None,
        )
        self._observed(live)
        await self.save()


async def run_local(
    identity: RunIdentity,
    profile: ProfileConfig | Sequence[Component | PlannedComponent],
    source: VideoSource,
    store: ResultStore,
    workdir: Path,
    *,
    settings: Settings | None = None,
    model_mapping: Mapping[str, ModelRef] | None = None,
    services: Mapping[str, Any] | None = None,
    profile_id: str | None = None,
    user_id: str | None = None,
) -> Manifest:
    """Analyse ``source`` with ``profile``'s components into ``store``; the final manifest.

    ``profile``: a :class:`ProfileConfig` (enabled components with params and ``required``
    flags; its sampling policy sets the timeline's fps and height) or a list of component
    instances (all required) / :class:`PlannedComponent`. ``store`` is a
    :class:`~trendflow.storage.base.ResultStore`. See the module docstring for the rules.
    """
    settings = settings or get_settings()
    planned = plan_components(profile)
    layers = dependency_layers({p.name: type(p.component) for p in planned})
    seg_settings = settings.segmenter
    if isinstance(profile, ProfileConfig):
        seg_settings = seg_settings.model_copy(
            update={
                "analysis_fps": profile.sampling.fps,
                "analysis_height": profile.sampling.height,
            }
        )
    segmenter = Segmenter(seg_settings)
    run = _Run(
        identity, planned, store, settings, dict(model_mapping or {}), services or {},
        profile_id, user_id,
        profile.model_dump(mode="json") if isinstance(profile, ProfileConfig) else None,
    )
    await run.save()

    prepared: PreparedVideo | None = None
    try:
        try:
            prepared = segmenter.prepare(source, Path(workdir))
        except TrendflowError as exc:
            return await _end(run, RunError.of(exc))
        run.manifest.video = VideoSection.from_info(prepared.info)
        await run.save()
        try:
            await _run_layers(run, segmenter, prepared, layers)
        except StorageError:
            raise
        except TrendflowError as exc:  # decoding or audio extraction failed part-way
            return await _end(run, RunError.of(exc))
        if run.failed_required is None:
            return await _end(run, None)
        failed = run.record(run.failed_required).error
        assert failed is not None
        return await _end(
            run,
            RunError(
                code=failed.code,
                message=f"required component {run.failed_required} failed: {failed.message}",
            ),
        )
    finally:
        if prepared is not None:
            segmenter.release(prepared)


async def _end(run: _Run, error: RunError | None) -> Manifest:
    end_manifest(run.manifest, "ok" if error is None else "error", error)
    await run.save()
    return run.manifest


async def _run_layers(
    run: _Run, segmenter: Segmenter, prepared: PreparedVideo, layers: list[list[str]]
) -> None:
    needs_audio = any(Input.AUDIO in x.planned.component.INPUTS for x in run.live.values())
    audio = segmenter.extract_audio(prepared) if needs_audio else None
    for layer in layers:
        framed = []
        for name in layer:
            live = run.live[name]
            if not await _setup(run, live, prepared, audio):
                if run.failed_required is not None:
                    return
                continue
            if live.planned.component.frame_based():
                framed.append(live)
                continue
            await run.complete(live)
            if run.failed_required is not None:
                return
        if framed:
            await _decode_and_map(run, segmenter, prepared, framed)
            if run.failed_required is not None:
                return
            for live in framed:
                if not live.done:
                    await run.complete(live)
                if run.failed_required is not None:
                    return


async def _setup(
    run: _Run, live: _Live, prepared: PreparedVideo, audio: AudioTrack | None
) -> bool:
    component = live.planned.component
    cls = type(component)
    await run.begin(live)
    try:
        check_dependencies(run.manifest, cls)
        deps = {d: await load_outputs(run.store, run.identity, d) for d in cls.DEPENDS_ON}
        live.ctx = build_context(
            cls,
            info=prepared.info,
            meta=prepared.meta,
            timeline=prepared.timeline,
            audio=audio,
            dependencies=deps,
            model=run.record(cls.NAME).model,
            services=run.services,
            policy=run.settings.retention.model_dump(),
        )
        run.timed(live, component.setup, live.ctx)
    except Exception as exc:  # recorded in the manifest: that is the component contract
        await run.fail(live, exc)
        return False
    return True


async def _decode_and_map(
    run: _Run, segmenter: Segmenter, prepared: PreparedVideo, framed: list[_Live]
) -> None:
    indices = {}
    for live in framed:
        assert live.ctx is not None and live.ctx.frame_indices is not None  # set by _setup
        indices[live.planned.name] = live.ctx.frame_indices
    active = list(framed)
    seg = run.settings.segmenter
    classes = {live.planned.name: type(live.planned.component) for live in framed}
    for chunk in segmenter.iter_chunks(prepared, union_of(classes, prepared.timeline)):
        if seg.archive_frames:
            await archive_chunk(
                run.store, run.identity.run_id, chunk, prepared.timeline,
                quality=seg.frames_jpeg_quality,
            )
        for live in list(active):
            mine = select_chunk(chunk, indices[live.planned.name])
            if not len(mine.frame_indices):
                continue
            try:
                live.partials.append(run.timed(live, live.planned.component.map, mine))
            except Exception as exc:  # recorded in the manifest: the component contract
                active.remove(live)
                await run.fail(live, exc)
                if run.failed_required is not None:
                    return
        if not active:
            return


__all__ = ["ABORTED", "PlannedComponent", "plan_components", "run_local"]
