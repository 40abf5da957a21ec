"""Sampling: which frames of the analysis timeline each component reads.

The analysis timeline is the video resampled to ``analysis_fps`` (12 by default): frame ``i`` is
shown at ``i / analysis_fps`` seconds. A component declares a :class:`Sampling`; the Segmenter
decodes the union of every enabled component's indices once and hands each component exactly its
own ``frame_indices`` and ``timestamps_s``.
:data:`~trendflow.contracts.identity.SAMPLING_POLICY_VERSION` names this policy: bump it whenever
the timeline or the index rules change, because cached results become incomparable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True, slots=True)
class Sampling:
    """Every timeline frame, frames at ``fps`` per second, or the first ``k`` frames."""

    mode: Literal["every_frame", "fps", "first_k"]
    fps: float | None = None
    k: int | None = None

    def __post_init__(self) -> None:
        match self.mode:
            case "every_frame":
                if self.fps is not None or self.k is not None:
                    raise ValueError("every_frame sampling takes no fps or k")
            case "fps":
                if self.fps is None or self.fps <= 0 or self.k is not None:
                    raise ValueError("fps sampling needs a positive fps and no k")
            case "first_k":
                if self.k is None or self.k <= 0 or self.fps is not None:
                    raise ValueError("first_k sampling needs a positive k and no fps")
            case _:
                raise ValueError(f"unknown sampling mode {self.mode!r}")

    @classmethod
    def every_frame(cls) -> Sampling:
        return cls("every_frame")

    @classmethod
    def at_fps(cls, fps: float) -> Sampling:
        return cls("fps", fps=fps)

    @classmethod
    def first(cls, k: int) -> Sampling:
        return cls("first_k", k=k)

    def indices(self, n_frames: int, timeline_fps: float) -> np.ndarray:
        """Sorted unique int64 timeline indices, all in ``[0, n_frames)``."""
        if n_frames < 0:
            raise ValueError("n_frames must be >= 0")
        match self.mode:
            case "every_frame":
                return np.arange(n_frames, dtype=np.int64)
            case "first_k":
                assert self.k is not None
                return np.arange(min(self.k, n_frames), dtype=np.int64)
            case "fps":
                assert self.fps is not None
                if self.fps >= timeline_fps:
                    return np.arange(n_frames, dtype=np.int64)
                duration = n_frames / timeline_fps
                times = np.arange(0.0, duration, 1.0 / self.fps)
                idx = np.floor(times * timeline_fps + 1e-9).astype(np.int64)
                return np.unique(idx[idx < n_frames])
        raise AssertionError(self.mode)

    def describe(self) -> str:
        match self.mode:
            case "every_frame":
                return "every frame"
            case "fps":
                return f"{self.fps:g} fps"
            case "first_k":
                return f"first {self.k} frames"
        raise AssertionError(self.mode)


def timestamps_for(indices: np.ndarray, timeline_fps: float) -> np.ndarray:
    """float64 seconds of timeline indices."""
    return indices.astype(np.float64) / float(timeline_fps)


def union_indices(per_component: Iterable[np.ndarray]) -> np.ndarray:
    """The sorted union of several index arrays (what the Segmenter decodes)."""
    out = np.zeros(0, dtype=np.int64)
    for idx in per_component:
        out = np.union1d(out, idx)
    return out.astype(np.int64)
