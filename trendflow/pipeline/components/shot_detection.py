"""``shot_detection``: hard cuts on the analysis timeline, shot lengths and the cut rate.

Algorithm (content-based, adaptive — the approach of PySceneDetect's ``AdaptiveDetector``):

1. Each frame is shrunk to :data:`WORK_WIDTH` px wide (area filter) and converted to HSV
   (OpenCV 8-bit: H 0–179, S and V 0–255). ``content_score[i]`` is the mean of three per-pixel
   mean absolute differences between frame ``i`` and frame ``i-1``: V; S; and H (circular, scaled
   to 0–255). Hue and saturation are noise in near-black pixels, so they count only where both
   frames have V ≥ :data:`DARK_V` (elsewhere they add 0) — otherwise the last frames of a fade to
   black would look like a cut.
   The chunk's ``context_frame`` supplies frame ``i-1`` for the first frame of a chunk, so chunks
   are mapped independently; frame 0 of the timeline has no predecessor and scores 0.
2. A frame is a cut when its score is at least ``min_content`` AND at least ``adaptive_ratio``
   times the mean score of the ``window`` frames on each side. A hard cut is one spike among
   quiet neighbours; a fade or a pan changes every frame by a similar amount, so its ratio stays
   near 1 and it is not counted (a 1 s fade to black moves V by ~21/frame at 12 fps, everywhere).
3. Cuts closer than ``min_shot_s`` to the previous cut are dropped (flashes, strobes).

``cut_frame_indices`` are the first frames of new shots; shots run from 0 to the end of the
timeline, so ``n_shots = n_cuts + 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import cv2
import numpy as np

from trendflow.contracts.arrays import ArraySpec
from trendflow.pipeline.components.base import (
    Component,
    ComponentChunk,
    ComponentResult,
    Input,
    Resources,
    frame_outputs,
)
from trendflow.pipeline.sampling import Sampling

WORK_WIDTH = 160
DARK_V = 32


def _hsv_small(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    height = max(2, round(h * WORK_WIDTH / w))
    small = cv2.resize(frame, (WORK_WIDTH, height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2HSV).astype(np.int16)


def _content(a: np.ndarray, b: np.ndarray) -> float:
    lit = (a[..., 2] >= DARK_V) & (b[..., 2] >= DARK_V)
    dh = np.abs(a[..., 0] - b[..., 0])
    dh = np.minimum(dh, 180 - dh) * (255.0 / 90.0)  # circular hue, max distance 90 → 255
    ds = np.abs(a[..., 1] - b[..., 1])
    dv = np.abs(a[..., 2] - b[..., 2])
    return float((dv.mean() + (ds * lit).mean() + (dh * lit).mean()) / 3.0)


class ShotDetection(Component):
    """Content-based hard-cut detection on every analysis frame (see the module docstring).

    ``RESOURCES`` were measured by ``benchmarks/bench_components.py`` on a 60 s 1080p clip: one
    core; memory = peak RSS growth (1.4 MB) rounded up to 16 MB with a 64 MB floor. The chunk's
    frames are not counted: the runtime hands them over zero-copy from the object store.
    """

    NAME: ClassVar[str] = "shot_detection"
    SCHEMA_VERSION: ClassVar[int] = 1
    PRODUCER_VERSION: ClassVar[str] = "1.0.0"
    RESOURCES: ClassVar[Resources] = Resources(cpus=1.0, memory_mb=64)
    TIER: ClassVar[int] = 0
    INPUTS: ClassVar[frozenset[Input]] = frozenset({Input.FRAMES})
    SAMPLING: ClassVar[Sampling | None] = Sampling.every_frame()
    DESCRIPTION: ClassVar[str] = "Hard cuts, shot lengths and cuts per minute."

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {"min_content": 15.0, "adaptive_ratio": 3.0, "window": 2, "min_shot_s": 0.5}

    @classmethod
    def outputs(cls) -> dict[str, ArraySpec]:
        return frame_outputs() | {
            "content_score": ArraySpec(
                "float32", ("n_frames",),
                "Mean absolute HSV difference to the previous frame (0 for frame 0).",
                "0-255",
            ),
            "cut_frame_indices": ArraySpec(
                "int64", ("n_cuts",), "First timeline frame of each new shot."
            ),
            "cut_timestamps_s": ArraySpec("float64", ("n_cuts",), "Time of each cut.", "s"),
            "shot_lengths_s": ArraySpec(
                "float64", ("n_shots",), "Length of each shot, n_shots = n_cuts + 1.", "s"
            ),
            "n_cuts": ArraySpec("int64", (), "Number of cuts.", "count"),
            "cuts_per_minute": ArraySpec(
                "float64", (), "n_cuts per minute of timeline.", "cuts/min"
            ),
            "mean_shot_length_s": ArraySpec("float64", (), "Mean shot length.", "s"),
            "median_shot_length_s": ArraySpec("float64", (), "Median shot length.", "s"),
        }

    def map(self, chunk: ComponentChunk) -> np.ndarray:
        scores = np.zeros(len(chunk.frame_indices), dtype=np.float32)
        prev = None if chunk.context_frame is None else _hsv_small(chunk.context_frame)
        for i, frame in enumerate(chunk.frames):
            cur = _hsv_small(frame)
            if prev is not None:
                scores[i] = _content(cur, prev)
            prev = cur
        return scores

    def reduce(self, partials: Sequence[Any]) -> ComponentResult:
        ctx = self.context
        assert ctx.frame_indices is not None and ctx.timestamps_s is not None
        scores = (
            np.concatenate(partials).astype(np.float32) if partials else np.zeros(0, np.float32)
        )
        if len(scores) != len(ctx.frame_indices):
            raise ValueError(
                f"{self.NAME}: {len(scores)} scores for {len(ctx.frame_indices)} frames"
            )
        cuts = detect_cuts(
            scores,
            min_content=float(self.params["min_content"]),
            ratio=float(self.params["adaptive_ratio"]),
            window=int(self.params["window"]),
            min_gap=max(1, round(float(self.params["min_shot_s"]) * ctx.timeline.fps)),
        )
        cut_idx = ctx.frame_indices[cuts].astype(np.int64)
        cut_ts = ctx.timestamps_s[cuts].astype(np.float64)
        duration = ctx.timeline.duration_s
        bounds = np.concatenate([[0.0], cut_ts, [duration]])
        shots = np.diff(bounds)
        minutes = duration / 60.0
        return ComponentResult(
            {
                "frame_indices": ctx.frame_indices.astype(np.int64),
                "timestamps_s": ctx.timestamps_s.astype(np.float64),
                "content_score": scores,
                "cut_frame_indices": cut_idx,
                "cut_timestamps_s": cut_ts,
                "shot_lengths_s": shots.astype(np.float64),
                "n_cuts": np.array(len(cut_idx), dtype=np.int64),
                "cuts_per_minute": np.array(
                    len(cut_idx) / minutes if minutes > 0 else 0.0, dtype=np.float64
                ),
                "mean_shot_length_s": np.array(float(shots.mean()), dtype=np.float64),
                "median_shot_length_s": np.array(float(np.median(shots)), dtype=np.float64),
            }
        )


def detect_cuts(
    scores: np.ndarray, *, min_content: float, ratio: float, window: int, min_gap: int
) -> np.ndarray:
    """Positions (into ``scores``) of cuts by the adaptive rule of the module docstring."""
    n = len(scores)
    s = scores.astype(np.float64)
    kept: list[int] = []
    for i in range(1, n):
        if s[i] < min_content:
            continue
        lo, hi = max(1, i - window), min(n, i + window + 1)
        neighbours = np.concatenate([s[lo:i], s[i + 1 : hi]])
        base = float(neighbours.mean()) if len(neighbours) else 0.0
        if s[i] / max(base, 1e-5) < ratio:
            continue
        if kept and i - kept[-1] < min_gap:
            continue
        kept.append(i)
    return np.asarray(kept, dtype=np.int64)
