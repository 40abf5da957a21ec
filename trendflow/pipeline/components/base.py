"""The component contract.

A component is one class in one module of this package. It declares what it is (``NAME``,
``SCHEMA_VERSION``, ``PRODUCER_VERSION``, ``TIER``), what it costs (``RESOURCES``), what it reads
(``INPUTS``, ``SAMPLING``, ``DEPENDS_ON``) and what it writes (:meth:`Component.outputs`). Its
life in a worker:

1. constructed on the driver with its profile params (cheap, picklable — no models yet);
2. :meth:`Component.setup` inside the worker with the :class:`ComponentContext` (load models,
   connect clients);
3. :meth:`Component.map` once per frame chunk, in any order and on any worker that ran ``setup``
   — partial results must not depend on instance state written by another ``map``;
4. :meth:`Component.reduce` once with the partials in chunk order → a :class:`ComponentResult`.

Before any run, a worker process may call the classmethod :meth:`Component.warm_up` once: the
one-time, per-process work the first ``setup``/``map`` would otherwise pay (loading the class
imports its module; ``warm_up`` adds what importing does not, such as JIT compilation).

Components never import ``ray``, ``asyncpg`` or ``aioboto3``: the runners wrap them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

import numpy as np

from trendflow.contracts.arrays import ArraySpec
from trendflow.contracts.empty import EmptyReason
from trendflow.errors import ComponentError, InvalidProfile, MissingFrameIndices
from trendflow.pipeline.sampling import Sampling
from trendflow.pipeline.types import AudioTrack, FrameChunk, Timeline, VideoInfo, VideoMeta


class Input(StrEnum):
    FRAMES = "frames"
    AUDIO = "audio"
    METADATA = "metadata"
    COMPONENTS = "components"  # outputs of the components named in DEPENDS_ON


@dataclass(frozen=True, slots=True)
class Resources:
    """What one task of a component needs, in absolute units.

    ``cpus``: cores kept busy; ``memory_mb``: peak resident memory above the worker's baseline;
    ``gpu_memory_mb``: device memory on a GPU instance (0 for CPU-only components).
    """

    cpus: float
    memory_mb: int
    gpu_memory_mb: int = 0

    def __post_init__(self) -> None:
        if self.cpus <= 0:
            raise ValueError(f"cpus must be > 0, got {self.cpus}")
        if self.memory_mb <= 0:
            raise ValueError(f"memory_mb must be > 0, got {self.memory_mb}")
        if self.gpu_memory_mb < 0:
            raise ValueError(f"gpu_memory_mb must be >= 0, got {self.gpu_memory_mb}")


@dataclass(slots=True)
class ComponentContext:
    """Everything about the run a component may read. Built by the runner, picklable."""

    video: VideoInfo
    meta: VideoMeta
    timeline: Timeline
    frame_indices: np.ndarray | None  # this component's own sampling; None if not frame-based
    timestamps_s: np.ndarray | None
    audio: AudioTrack | None = None  # None when the component does not read audio
    dependencies: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)
    model: str | None = None  # resolved "name:version" for model-backed components
    services: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"triton": client}
    policy: Mapping[str, Any] = field(default_factory=dict)  # retention flags etc.


@dataclass(slots=True)
class ComponentChunk:
    """The frames of one chunk that this component sampled (a view, never a copy)."""

    chunk_index: int
    frame_indices: np.ndarray  # int64 [n]
    timestamps_s: np.ndarray  # float64 [n]
    frames: np.ndarray  # uint8 [n, H, W, 3]
    context_frame: np.ndarray | None  # this component's previous sampled frame, if any


@dataclass(slots=True)
class ComponentResult:
    """``ok`` with arrays matching :meth:`Component.outputs`, or ``empty`` with a reason."""

    arrays: dict[str, np.ndarray]
    empty_reason: EmptyReason | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "ok" if self.empty_reason is None else "empty"

    @classmethod
    def empty(cls, reason: EmptyReason, *notes: str) -> ComponentResult:
        return cls(arrays={}, empty_reason=reason, notes=list(notes))


class Component(ABC):
    """Base of every component; see the module docstring for the life cycle."""

    NAME: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int]
    PRODUCER_VERSION: ClassVar[str]
    RESOURCES: ClassVar[Resources]
    TIER: ClassVar[int]
    INPUTS: ClassVar[frozenset[Input]]
    SAMPLING: ClassVar[Sampling | None] = None
    DEPENDS_ON: ClassVar[tuple[str, ...]] = ()
    MODEL: ClassVar[str | None] = None  # Triton model name, for model-backed components
    # Calls a model server (Triton): runs on the GPU actors, which hold the client. True for
    # every model-backed component, also those whose model the operator brings (MODEL None).
    USES_MODEL_SERVER: ClassVar[bool] = False
    DESCRIPTION: ClassVar[str] = ""

    def __init__(self, **params: Any) -> None:
        self.check_params(params)
        self.params: dict[str, Any] = {**self.default_params(), **params}
        self.ctx: ComponentContext | None = None

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        """The params a profile may set, with their defaults (override in subclasses)."""
        return {}

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> None:
        """Refuse params the component does not declare, or not of its default's JSON type
        (:class:`InvalidProfile`): checked when a run is priced and created, so a bad param
        never reaches a worker."""
        declared = cls.default_params()
        unknown = sorted(set(params) - set(declared))
        if unknown:
            raise InvalidProfile(
                f"{cls.NAME}: unknown params {unknown}; known: {sorted(declared)}",
                component=cls.NAME,
                params=unknown,
            )
        for name, value in params.items():
            if not _same_json_type(value, declared[name]):
                raise InvalidProfile(
                    f"{cls.NAME}: param {name} must be {_json_type(declared[name])}, "
                    f"got {_json_type(value)}",
                    component=cls.NAME,
                    params=[name],
                )

    @classmethod
    def frame_based(cls) -> bool:
        return Input.FRAMES in cls.INPUTS

    @classmethod
    @abstractmethod
    def outputs(cls) -> dict[str, ArraySpec]:
        """Every NPZ key of an ``ok`` result (reserved keys included for frame-based ones)."""

    @classmethod  # noqa: B027 - a hook that has nothing to do by default, not abstract
    def warm_up(cls) -> None:
        """One-time initialisation of this component in a worker process, before its first run
        (``trendflow.actors.pools.Pools.warm``): what the first ``setup``/``map`` of a process
        pays and the next do not. Loading the class has imported its module already; the
        default has nothing more to do. Errors propagate: a worker that cannot warm is reported.
        """

    def setup(self, ctx: ComponentContext) -> None:
        """Prepare inside the worker. Frame-based components must receive their indices."""
        if self.frame_based() and (ctx.frame_indices is None or ctx.timestamps_s is None):
            raise MissingFrameIndices(
                f"{self.NAME} reads frames but was given no frame_indices; "
                "the Segmenter must assign each frame-based component its sampling",
                component=self.NAME,
            )
        self.ctx = ctx

    def map(self, chunk: ComponentChunk) -> Any:
        """Per-chunk work; the default keeps nothing (non-frame components).

        ``map`` must not write state another ``map`` reads: chunks of one run may be mapped on
        different workers, and a GPU actor maps several chunks of one instance at once, from
        several threads (:mod:`trendflow.actors.workers`).
        """
        return None

    @abstractmethod
    def reduce(self, partials: Sequence[Any]) -> ComponentResult:
        """Combine the partials (in chunk order) into the final result."""

    @property
    def context(self) -> ComponentContext:
        if self.ctx is None:
            raise ComponentError(f"{self.NAME}: setup() was not called", component=self.NAME)
        return self.ctx


def _json_type(value: Any) -> str:
    match value:
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list() | tuple():
            return "a list"
        case Mapping():
            return "an object"
    return "null" if value is None else type(value).__name__


def _same_json_type(value: Any, default: Any) -> bool:
    """Whether ``value`` may replace ``default``: the same JSON type; an integer param takes
    an integral number (``2.0`` is ``2``, as :func:`~trendflow.contracts.profile.config_hash`
    hashes it); a None default takes anything."""
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, int):
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(default, float):
        return isinstance(value, int | float)
    return _json_type(value) == _json_type(default)


def select_chunk(chunk: FrameChunk, indices: np.ndarray) -> ComponentChunk:
    """The part of a union ``chunk`` that a component with sorted ``indices`` samples.

    The context frame is passed on only when the chunk's context frame is this component's own
    previous sampled frame, so a component comparing neighbours sees exactly its predecessor
    (components that need it sample every frame, where that always holds).
    """
    mask = np.isin(chunk.frame_indices, indices, assume_unique=True)
    pos = np.flatnonzero(mask)
    context: np.ndarray | None = None
    if len(pos) and chunk.context_index is not None:
        earlier = indices[indices < chunk.frame_indices[pos[0]]]
        if len(earlier) and int(earlier[-1]) == chunk.context_index:
            context = chunk.context_frame
    return ComponentChunk(
        chunk_index=chunk.index,
        frame_indices=chunk.frame_indices[pos],
        timestamps_s=chunk.timestamps_s[pos],
        frames=chunk.frames if len(pos) == len(mask) else chunk.frames[pos],
        context_frame=context,
    )


def frame_outputs() -> dict[str, ArraySpec]:
    """The reserved keys of every frame-based component."""
    return {
        "frame_indices": ArraySpec("int64", ("n_frames",), "Indices on the analysis timeline."),
        "timestamps_s": ArraySpec("float64", ("n_frames",), "Time of each frame.", unit="s"),
    }


__all__ = [
    "Component",
    "ComponentChunk",
    "ComponentContext",
    "ComponentResult",
    "Input",
    "Resources",
    "frame_outputs",
    "select_chunk",
]
