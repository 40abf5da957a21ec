"""``motion``: how much the picture moves, split into camera motion and object motion.

Dense optical flow (OpenCV's DIS, Dense Inverse Search, preset ``ULTRAFAST``) between
consecutive analysis frames shrunk to :data:`WORK_HEIGHT` px high, in grey. DIS replaced
Farnebäck (1.x): on these small frames it finds the same pans within a few per cent at a
fraction of the cost (``benchmarks/bench_motion.py`` measures both on the same frames), and
motion was what bounded the ``fast`` profile's wall time. Flow is converted to **frame heights
per second** (``px / WORK_HEIGHT × timeline fps``)
so values do not depend on resolution or frame rate; 1.0 means content crosses the whole frame
height in one second.

Per frame ``i`` (motion from frame ``i-1``; frame 0 of the timeline is 0):

- ``motion_magnitude``: mean length of the flow vectors;
- ``camera_dx`` / ``camera_dy``: the per-component median flow — the global translation of a pan
  or tilt, robust while moving objects cover under half the frame;
  ``camera_magnitude`` is its length;
- ``object_magnitude``: mean length of the flow after subtracting the camera translation — what
  moves relative to the background. Zoom and rotation are not translations and land here.

The chunk's ``context_frame`` supplies frame ``i-1`` for the first frame of a chunk, so chunks are
mapped independently.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, ClassVar, cast

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

WORK_HEIGHT = 72
STATIC_THRESHOLD = 0.02
"""``motion_magnitude`` below this (frame heights/s) counts as a static frame."""

_PER_FRAME = ("motion_magnitude", "camera_dx", "camera_dy", "camera_magnitude",
              "object_magnitude")
_PER_FRAME_DOCS = {
    "motion_magnitude": "Mean optical-flow speed.",
    "camera_dx": "Camera (median) horizontal flow, + = content moves right.",
    "camera_dy": "Camera (median) vertical flow, + = content moves down.",
    "camera_magnitude": "Length of the camera translation.",
    "object_magnitude": "Mean flow speed relative to the camera translation.",
}
_UNIT = "frame heights/s"


def _grey_small(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    width = max(2, round(w * WORK_HEIGHT / h))
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (width, WORK_HEIGHT), interpolation=cv2.INTER_AREA)


@lru_cache(maxsize=1)
def _dis() -> cv2.DISOpticalFlow:
    """One DIS instance per worker process (it keeps buffers between calls; maps of one
    process run one at a time)."""
    return cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)


def flow_measures(prev: np.ndarray, cur: np.ndarray, fps: float) -> tuple[float, ...]:
    """``(magnitude, camera_dx, camera_dy, camera_magnitude, object_magnitude)`` of two greys."""
    # `None` lets OpenCV allocate the output; its stubs type this in/out array as required.
    no_flow = cast("cv2.typing.MatLike", None)
    flow = _dis().calc(prev, cur, no_flow) * np.float32(fps / WORK_HEIGHT)
    fx, fy = cv2.split(flow)
    cam_x, cam_y = float(np.median(fx)), float(np.median(fy))
    magnitude = cv2.mean(cv2.magnitude(fx, fy))[0]
    obj = cv2.mean(cv2.magnitude(fx - np.float32(cam_x), fy - np.float32(cam_y)))[0]
    return magnitude, cam_x, cam_y, float(np.hypot(cam_x, cam_y)), obj


class Motion(Component):
    """Optical-flow motion per analysis frame with a camera/object split (module docstring).

    ``RESOURCES`` were measured by ``benchmarks/bench_components.py`` on a 60 s 1080p clip: one
    core; memory = peak RSS growth (3.4 MB) rounded up to 16 MB with a 64 MB floor. The chunk's
    frames are not counted: the runtime hands them over zero-copy from the object store.
    """

    NAME: ClassVar[str] = "motion"
    SCHEMA_VERSION: ClassVar[int] = 1
    PRODUCER_VERSION: ClassVar[str] = "2.0.0"
    RESOURCES: ClassVar[Resources] = Resources(cpus=1.0, memory_mb=64)
    TIER: ClassVar[int] = 0
    INPUTS: ClassVar[frozenset[Input]] = frozenset({Input.FRAMES})
    SAMPLING: ClassVar[Sampling | None] = Sampling.every_frame()
    DESCRIPTION: ClassVar[str] = "Optical-flow motion over time, camera vs object motion."

    @classmethod
    def outputs(cls) -> dict[str, ArraySpec]:
        specs = frame_outputs()
        for name in _PER_FRAME:
            specs[name] = ArraySpec(
                "float32", ("n_frames",), f"Per frame: {_PER_FRAME_DOCS[name]}", _UNIT
            )
        specs |= {
            "motion_mean": ArraySpec("float64", (), "Mean of motion_magnitude.", _UNIT),
            "motion_p90": ArraySpec("float64", (), "90th percentile of motion_magnitude.", _UNIT),
            "motion_max": ArraySpec("float64", (), "Maximum of motion_magnitude.", _UNIT),
            "camera_motion_mean": ArraySpec("float64", (), "Mean of camera_magnitude.", _UNIT),
            "object_motion_mean": ArraySpec("float64", (), "Mean of object_magnitude.", _UNIT),
            "static_ratio": ArraySpec(
                "float64", (),
                f"Share of frames with motion_magnitude < {STATIC_THRESHOLD} (frame 0 excluded).",
                "ratio",
            ),
        }
        return specs

    def map(self, chunk: ComponentChunk) -> np.ndarray:
        fps = self.context.timeline.fps
        out = np.zeros((len(chunk.frame_indices), len(_PER_FRAME)), dtype=np.float32)
        prev = None if chunk.context_frame is None else _grey_small(chunk.context_frame)
        for i, frame in enumerate(chunk.frames):
            cur = _grey_small(frame)
            if prev is not None:
                out[i] = flow_measures(prev, cur, fps)
            prev = cur
        return out

    def reduce(self, partials: Sequence[Any]) -> ComponentResult:
        ctx = self.context
        assert ctx.frame_indices is not None and ctx.timestamps_s is not None
        table = (
            np.concatenate(partials)
            if partials
            else np.zeros((0, len(_PER_FRAME)), np.float32)
        )
        if len(table) != len(ctx.frame_indices):
            raise ValueError(
                f"{self.NAME}: {len(table)} measured frames for {len(ctx.frame_indices)}"
            )
        arrays: dict[str, np.ndarray] = {
            "frame_indices": ctx.frame_indices.astype(np.int64),
            "timestamps_s": ctx.timestamps_s.astype(np.float64),
        }
        for col, name in enumerate(_PER_FRAME):
            arrays[name] = np.ascontiguousarray(table[:, col])
        # Frame 0 has no predecessor; summaries use frames that have one.
        body = table[1:].astype(np.float64) if len(table) > 1 else np.zeros((1, len(_PER_FRAME)))
        mag = body[:, 0]
        arrays |= {
            "motion_mean": np.array(float(mag.mean())),
            "motion_p90": np.array(float(np.percentile(mag, 90))),
            "motion_max": np.array(float(mag.max())),
            "camera_motion_mean": np.array(float(body[:, 3].mean())),
            "object_motion_mean": np.array(float(body[:, 4].mean())),
            "static_ratio": np.array(float((mag < STATIC_THRESHOLD).mean())),
        }
        return ComponentResult(arrays)
