"""Per-component steps shared by every runner (the local runner and the Ray runtime).

Both runners must produce byte-for-byte the same arrays for the same clip and profile, so what
decides the result lives here once: which frames a component reads, the context it is set up
with, the order components run in (dependencies first), which chunks it maps, and how a result
becomes an NPZ artifact plus its manifest record.

The **manifest lifecycle** lives here too, so both runners record failures the same way:
:func:`new_manifest` (every enabled component ``pending``), :func:`reopen_manifest` (a resumed
run redoes what was ``running`` or ``error``), :func:`check_dependencies` (a component whose
dependency did not finish fails as ``component_failed`` — an optional dependency that failed
never breaks the run), :func:`record_optional_failure` (the run's warning) and
:func:`end_manifest` (unfinished components become ``run_aborted`` errors after a failure and
``pending`` again after a cancel; the run's status, error and finish time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.keys import artifact_key
from trendflow.contracts.manifest import (
    ArtifactRecord,
    ComponentRecord,
    ErrorInfo,
    Manifest,
    RunError,
    utc_now,
)
from trendflow.contracts.npz import decode_npz, encode_result
from trendflow.contracts.profile import ModelRef
from trendflow.errors import ComponentError, ConfigError, TrendflowError
from trendflow.pipeline.components.base import Component, ComponentContext, Input
from trendflow.pipeline.sampling import timestamps_for, union_indices
from trendflow.pipeline.types import AudioTrack, FrameChunk, Timeline, VideoInfo, VideoMeta
from trendflow.storage.base import ResultStore


def component_indices(cls: type[Component], timeline: Timeline) -> np.ndarray | None:
    """The timeline indices a frame-based component reads (None for the others)."""
    if not cls.frame_based():
        return None
    if cls.SAMPLING is None:
        raise ConfigError(f"{cls.NAME} reads frames but declares no SAMPLING", component=cls.NAME)
    return cls.SAMPLING.indices(timeline.n_frames, timeline.fps)


def union_of(classes: Mapping[str, type[Component]], timeline: Timeline) -> np.ndarray:
    """The union of every frame-based component's indices: what the Segmenter decodes."""
    parts = [component_indices(c, timeline) for c in classes.values() if c.frame_based()]
    return union_indices(p for p in parts if p is not None)


def dependency_layers(classes: Mapping[str, type[Component]]) -> list[list[str]]:
    """Components in layers: each layer depends only on earlier ones; names sorted per layer.

    A dependency that is not enabled in the run is a :class:`ConfigError`, and so is a cycle.
    """
    remaining = dict(classes)
    for name, cls in classes.items():
        missing = sorted(set(cls.DEPENDS_ON) - set(classes))
        if missing:
            raise ConfigError(
                f"{name} depends on {missing}, which the profile does not enable", component=name
            )
    done: set[str] = set()
    layers: list[list[str]] = []
    while remaining:
        ready = sorted(n for n, c in remaining.items() if set(c.DEPENDS_ON) <= done)
        if not ready:
            raise ConfigError(f"dependency cycle among {sorted(remaining)}")
        layers.append(ready)
        done.update(ready)
        for name in ready:
            del remaining[name]
    return layers


def build_context(
    cls: type[Component],
    *,
    info: VideoInfo,
    meta: VideoMeta,
    timeline: Timeline,
    audio: AudioTrack | None,
    dependencies: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    model: str | None = None,
    services: Mapping[str, Any] | None = None,
    policy: Mapping[str, Any] | None = None,
) -> ComponentContext:
    """The context a component is set up with: only the inputs it declares."""
    indices = component_indices(cls, timeline)
    return ComponentContext(
        video=info,
        meta=meta,
        timeline=timeline,
        frame_indices=indices,
        timestamps_s=None if indices is None else timestamps_for(indices, timeline.fps),
        audio=audio if Input.AUDIO in cls.INPUTS else None,
        dependencies=dict(dependencies or {}),
        model=model,
        services=dict(services or {}),
        policy=dict(policy or {}),
    )


def chunk_has_frames(chunk_indices: np.ndarray, indices: np.ndarray) -> bool:
    """Whether a union chunk holds any frame of a component (only those chunks are mapped)."""
    return bool(np.isin(chunk_indices, indices, assume_unique=True).any())


def maps_chunk(ctx: ComponentContext, chunk: FrameChunk) -> bool:
    """Whether the component with context ``ctx`` maps ``chunk``."""
    return ctx.frame_indices is not None and chunk_has_frames(
        chunk.frame_indices, ctx.frame_indices
    )


@dataclass(frozen=True, slots=True)
class ComponentTiming:
    """When a component ran, and how long it worked.

    ``duration_ms`` (the manifest field) is the component's own work — ``busy_s`` when the
    runner measured it (setup, maps, reduce, encoding; not the decode shared with others nor
    time spent waiting for a worker) — else the wall time between start and finish.
    """

    started_at: datetime
    finished_at: datetime
    busy_s: float | None = None

    @property
    def duration_ms(self) -> int:
        if self.busy_s is not None:
            return max(0, round(self.busy_s * 1000))
        return max(0, round((self.finished_at - self.started_at).total_seconds() * 1000))


async def persist_result(
    store: ResultStore,
    identity: RunIdentity,
    cls: type[Component],
    result: Any,
    *,
    model: str | None,
    created_at: datetime | None = None,
) -> ArtifactRecord:
    """Encode ``result`` (a :class:`ComponentResult`) as the component's NPZ and store it."""
    data = encode_result(identity, cls, result, model=model, created_at=created_at or utc_now())
    key = artifact_key(identity.platform_id, identity.video_id, identity.run_id, cls.NAME)
    return ArtifactRecord.from_info(await store.put_bytes(key, data))


async def load_outputs(
    store: ResultStore, identity: RunIdentity, name: str
) -> dict[str, np.ndarray]:
    """The stored arrays of a finished component (what its dependants receive)."""
    key = artifact_key(identity.platform_id, identity.video_id, identity.run_id, name)
    return decode_npz(await store.get_bytes(key), where=key).arrays


def record_running(manifest: Manifest, name: str, started_at: datetime) -> None:
    """Mark a component running in the manifest."""
    rec = manifest.components[name]
    rec.status = "running"
    rec.started_at = started_at
    rec.finished_at = None
    rec.error = None
    rec.empty_reason = None
    rec.artifacts = []


def record_done(
    manifest: Manifest,
    name: str,
    result: Any,
    artifact: ArtifactRecord,
    timing: ComponentTiming,
    *,
    device_used: str | None,
    peak_ram_mb: float | None,
    gpu_memory_mb: float | None = None,
) -> ComponentRecord:
    """Mark a component ``ok``/``empty`` with its artifact and observations."""
    rec = manifest.components[name]
    rec.status = result.status
    rec.empty_reason = result.empty_reason
    rec.notes = list(result.notes)
    rec.artifacts = [artifact]
    rec.error = None
    rec.started_at, rec.finished_at = timing.started_at, timing.finished_at
    rec.duration_ms = timing.duration_ms
    rec.device_used = device_used
    rec.peak_ram_mb = peak_ram_mb
    rec.gpu_memory_mb = gpu_memory_mb
    return rec


def record_error(
    manifest: Manifest, name: str, error: TrendflowError, timing: ComponentTiming
) -> ComponentRecord:
    """Mark a component ``error`` with the stable code and message."""
    rec = manifest.components[name]
    rec.status = "error"
    rec.error = ErrorInfo(code=error.code, message=error.message)
    rec.empty_reason = None
    rec.artifacts = []
    rec.started_at, rec.finished_at = timing.started_at, timing.finished_at
    rec.duration_ms = timing.duration_ms
    return rec


def as_trendflow_error(exc: BaseException, component: str) -> TrendflowError:
    """A failure as a TrendFlow error (foreign exceptions become ``component_failed``)."""
    if isinstance(exc, TrendflowError):
        return exc
    return ComponentError(f"{component}: {type(exc).__name__}: {exc}", component=component)


def finished_components(manifest: Manifest) -> set[str]:
    """Components whose result is already stored (``ok`` or ``empty``): never recomputed."""
    return {n for n, rec in manifest.components.items() if rec.status in ("ok", "empty")}


# -- the manifest's lifecycle ----------------------------------------------------------------

ABORTED = "run_aborted"
"""Error code of components left unfinished when the run failed."""


def new_manifest(
    identity: RunIdentity,
    classes: Mapping[str, type[Component]],
    required: Mapping[str, bool],
    model_mapping: Mapping[str, ModelRef],
    *,
    profile_id: str | None,
    user_id: str | None,
    profile_config: Mapping[str, Any] | None = None,
    source: Mapping[str, Any] | None = None,
    created_at: datetime | None = None,
) -> Manifest:
    """A run's first manifest: every component ``pending`` with its versions and model, the
    run ``running`` from now."""
    manifest = Manifest.new(
        identity,
        components={
            name: ComponentRecord.pending(
                schema_version=cls.SCHEMA_VERSION,
                producer_version=cls.PRODUCER_VERSION,
                required=required[name],
                model=model_mapping[name].ref if name in model_mapping else None,
            )
            for name, cls in classes.items()
        },
        model_mapping=model_mapping,
        profile_id=profile_id,
        user_id=user_id,
        profile_config=profile_config,
        source=source,
        created_at=created_at,
    )
    return reopen_manifest(manifest)


def _pending_again(rec: ComponentRecord) -> ComponentRecord:
    return ComponentRecord.pending(
        schema_version=rec.schema_version,
        producer_version=rec.producer_version,
        required=rec.required,
        model=rec.model,
    )


def reopen_manifest(manifest: Manifest) -> Manifest:
    """The run ``running`` (again): components interrupted (``running``) or failed earlier
    (``error``) go back to ``pending``; ``ok``/``empty`` ones are kept, never recomputed."""
    for name, rec in manifest.components.items():
        if rec.status in ("running", "error"):
            manifest.components[name] = _pending_again(rec)
    manifest.run.status = "running"
    manifest.run.error = None
    manifest.run.finished_at = None
    manifest.run.started_at = manifest.run.started_at or utc_now()
    return manifest


def check_dependencies(manifest: Manifest, cls: type[Component]) -> None:
    """Raise ``component_failed`` when a dependency of ``cls`` did not finish (``ok`` or
    ``empty``): an optional dependency that failed fails its dependants, not the run."""
    failed = [d for d in cls.DEPENDS_ON if manifest.components[d].status not in ("ok", "empty")]
    if failed:
        raise ComponentError(
            f"{cls.NAME} cannot run: its dependencies {failed} did not finish",
            component=cls.NAME,
        )


def record_optional_failure(manifest: Manifest, name: str, error: TrendflowError) -> str:
    """The run's warning for a failed optional component, added to the manifest."""
    warning = f"optional component {name} failed: {error.code}"
    manifest.run.warnings.append(warning)
    return warning


def end_manifest(manifest: Manifest, status: str, error: RunError | None) -> list[str]:
    """End the run in the manifest; the components it closed, by name.

    Components left ``pending``/``running``: ``error`` with :data:`ABORTED` when the run failed
    (or ended ``ok`` without them), back to ``pending`` when it was cancelled (a later run of
    the same video may do them).
    """
    now = utc_now()
    closed = []
    for name, rec in manifest.components.items():
        if rec.status not in ("running", "pending"):
            continue
        closed.append(name)
        if status == "cancelled":
            manifest.components[name] = _pending_again(rec)
            continue
        rec.status = "error"
        rec.error = ErrorInfo(code=ABORTED, message="the run ended before this component finished")
        rec.started_at = rec.started_at or now
        rec.finished_at = now
        rec.artifacts = []
    manifest.run.status = status  # type: ignore[assignment]
    manifest.run.error = error
    manifest.run.finished_at = now
    return closed


__all__ = [
    "ABORTED",
    "ComponentTiming",
    "as_trendflow_error",
    "build_context",
    "check_dependencies",
    "chunk_has_frames",
    "component_indices",
    "dependency_layers",
    "end_manifest",
    "finished_components",
    "load_outputs",
    "maps_chunk",
    "new_manifest",
    "persist_result",
    "record_done",
    "record_error",
    "record_optional_failure",
    "record_running",
    "reopen_manifest",
    "union_of",
]
