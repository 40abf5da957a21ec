"""``faces``: face boxes, landmarks, count, screen share and the largest-face track (Triton).

Frames (default 2 fps on the analysis timeline) go to the mapped face detector (default
``face_detector:1``, MTCNN) in requests of its ``max_batch_size``.

Layout — **flat arrays with a frame column**: every detected face is one row of the ``face_*``
keys, and ``face_frame`` is its row in ``frame_indices``. Coordinates are normalised to the frame
(x by width, y by height, 0–1), so they read the same at any analysis resolution.

- ``face_area_ratio``: box area / frame area (boxes clipped to the frame).
- ``screen_share`` per frame: the share of the frame covered by the union of its face boxes
  (rasterised on a 1/4-resolution grid).
- Largest-face track: per frame the largest face (``largest_face_row``, -1 when none), and a
  ``largest_face_track_id`` that starts a new track whenever the largest face's box overlaps the
  previous sampled frame's largest box by IoU < :data:`TRACK_IOU` or a frame without faces came
  between (-1 when the frame has no face).

No face in any sampled frame → ``empty_reason = no_faces_in_video``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from trendflow.contracts.arrays import ArraySpec
from trendflow.contracts.empty import EmptyReason
from trendflow.pipeline.components.base import (
    Component,
    ComponentChunk,
    ComponentContext,
    ComponentResult,
    Input,
    Resources,
    frame_outputs,
)
from trendflow.pipeline.components.model_backed import BoundModel, bind_model, infer_batched
from trendflow.pipeline.sampling import Sampling

TRACK_IOU = 0.3
_GRID = 4  # screen share is rasterised at 1/_GRID of the frame's resolution
_PER_FACE = ("face_frame", "face_boxes", "face_scores", "face_landmarks", "face_area_ratio")


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two ``[x1, y1, x2, y2]`` boxes."""
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def union_share(boxes: np.ndarray, height: int, width: int) -> float:
    """Share of the frame covered by the union of normalised ``boxes`` ``[k, 4]``."""
    if not len(boxes):
        return 0.0
    gh, gw = max(1, height // _GRID), max(1, width // _GRID)
    mask = np.zeros((gh, gw), bool)
    for x1, y1, x2, y2 in boxes:
        mask[int(np.floor(y1 * gh)) : int(np.ceil(y2 * gh)),
             int(np.floor(x1 * gw)) : int(np.ceil(x2 * gw))] = True
    return float(mask.mean())


class Faces(Component):
    """Face detection per sampled frame plus video summaries (see the module docstring).

    ``RESOURCES``: the worker holds one request of frames (16 × 320 × 568 × 3 ≈ 9 MB) and the
    results; the detector runs in Triton (MTCNN on CPU ≈ 150 MB RSS, on GPU < 1 GB).
    """

    NAME: ClassVar[str] = "faces"
    SCHEMA_VERSION: ClassVar[int] = 1
    PRODUCER_VERSION: ClassVar[str] = "1.0.0"
    RESOURCES: ClassVar[Resources] = Resources(cpus=1.0, memory_mb=128, gpu_memory_mb=1024)
    USES_MODEL_SERVER: ClassVar[bool] = True
    TIER: ClassVar[int] = 0
    INPUTS: ClassVar[frozenset[Input]] = frozenset({Input.FRAMES})
    SAMPLING: ClassVar[Sampling | None] = Sampling.at_fps(2.0)
    MODEL: ClassVar[str | None] = "face_detector"
    DESCRIPTION: ClassVar[str] = (
        "Face boxes, landmarks, count, screen share and the largest-face track (MTCNN)."
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._model: BoundModel | None = None

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {"min_score": 0.9}

    @classmethod
    def outputs(cls) -> dict[str, ArraySpec]:
        return frame_outputs() | {
            "face_frame": ArraySpec(
                "int32", ("n_faces",), "Per face: its row in frame_indices.", "row"
            ),
            "face_boxes": ArraySpec(
                "float32", ("n_faces", 4), "Per face: box [x1, y1, x2, y2], normalised.", "0-1"
            ),
            "face_scores": ArraySpec("float32", ("n_faces",), "Per face: detector score.", "0-1"),
            "face_landmarks": ArraySpec(
                "float32", ("n_faces", 5, 2),
                "Per face: eyes, nose, mouth corners as (x, y), normalised.", "0-1",
            ),
            "face_area_ratio": ArraySpec(
                "float32", ("n_faces",), "Per face: box area / frame area.", "ratio"
            ),
            "face_count": ArraySpec("int32", ("n_frames",), "Per frame: faces detected.", "faces"),
            "screen_share": ArraySpec(
                "float32", ("n_frames",), "Per frame: frame share covered by face boxes.", "ratio"
            ),
            "largest_face_row": ArraySpec(
                "int32", ("n_frames",), "Per frame: row of its largest face in face_*, -1 if none.",
                "row",
            ),
            "largest_face_track_id": ArraySpec(
                "int32", ("n_frames",),
                f"Per frame: track of the largest face (new track when IoU < {TRACK_IOU} with the "
                "previous frame's or after a frame without faces); -1 if none.", "track",
            ),
            "n_largest_face_tracks": ArraySpec(
                "int32", (), "Number of largest-face tracks.", "tracks"
            ),
            "frames_with_faces_ratio": ArraySpec(
                "float64", (), "Share of sampled frames with at least one face.", "ratio"
            ),
            "mean_face_count": ArraySpec("float64", (), "Mean faces per sampled frame.", "faces"),
            "max_face_count": ArraySpec("int32", (), "Most faces in one frame.", "faces"),
            "mean_screen_share": ArraySpec(
                "float64", (), "Mean screen_share over sampled frames.", "ratio"
            ),
            "largest_face_mean_center": ArraySpec(
                "float32", (2,), "Mean (x, y) centre of the largest face over frames with one.",
                "0-1",
            ),
        }

    def setup(self, ctx: ComponentContext) -> None:
        super().setup(ctx)
        self._model = bind_model(ctx, self.NAME)

    def map(self, chunk: ComponentChunk) -> dict[str, Any]:
        assert self._model is not None
        frames = chunk.frames
        h, w = frames.shape[1:3]
        scale = np.array([w, h, w, h], np.float32)
        rows: dict[str, list[np.ndarray]] = {k: [] for k in _PER_FACE}
        counts = np.zeros(len(frames), np.int32)
        share = np.zeros(len(frames), np.float32)
        outs = infer_batched(self._model, "IMAGE", frames,
                             ("BOXES", "SCORES", "LANDMARKS", "COUNT"))
        i = 0
        for out in outs:
            for b in range(len(out["COUNT"])):
                k = int(out["COUNT"][b, 0])
                keep = out["SCORES"][b, :k] >= float(self.params["min_score"])
                boxes = np.clip(out["BOXES"][b, :k][keep] / scale, 0.0, 1.0)
                marks = out["LANDMARKS"][b, :k][keep] / np.array([w, h], np.float32)
                counts[i] = len(boxes)
                share[i] = union_share(boxes, h, w)
                rows["face_frame"].append(np.full(len(boxes), i, np.int32))  # row within chunk
                rows["face_boxes"].append(boxes.astype(np.float32))
                rows["face_scores"].append(out["SCORES"][b, :k][keep].astype(np.float32))
                rows["face_landmarks"].append(marks.astype(np.float32))
                rows["face_area_ratio"].append(
                    ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).astype(np.float32)
                )
                i += 1
        if i != len(frames):
            raise ValueError(f"{self.NAME}: detector answered {i} frames for {len(frames)}")
        return {
            **{k: _cat(v, k) for k, v in rows.items()},
            "face_count": counts,
            "screen_share": share,
        }

    def reduce(self, partials: Sequence[Any]) -> ComponentResult:
        ctx = self.context
        assert ctx.frame_indices is not None and ctx.timestamps_s is not None
        per_face: dict[str, list[np.ndarray]] = {k: [] for k in _PER_FACE}
        offset = 0
        for p in partials:
            for k in _PER_FACE:
                per_face[k].append(p[k] + offset if k == "face_frame" else p[k])
            offset += len(p["face_count"])
        faces = {k: _cat(v, k) for k, v in per_face.items()}
        counts = np.concatenate([p["face_count"] for p in partials]) if partials else np.zeros(
            0, np.int32)
        share = np.concatenate([p["screen_share"] for p in partials]) if partials else np.zeros(
            0, np.float32)
        if len(counts) != len(ctx.frame_indices):
            raise ValueError(
                f"{self.NAME}: {len(counts)} frames detected, {len(ctx.frame_indices)} sampled"
            )
        if not len(faces["face_frame"]):
            return ComponentResult.empty(
                EmptyReason.NO_FACES_IN_VIDEO, f"no face in {len(counts)} sampled frames"
            )
        largest, track = self._largest_track(faces, len(counts))
        has = largest >= 0
        centers = faces["face_boxes"][largest[has]]
        mean_center = np.stack(
            [(centers[:, 0] + centers[:, 2]) / 2, (centers[:, 1] + centers[:, 3]) / 2], axis=1
        ).mean(axis=0)
        return ComponentResult({
            "frame_indices": ctx.frame_indices.astype(np.int64),
            "timestamps_s": ctx.timestamps_s.astype(np.float64),
            **faces,
            "face_count": counts.astype(np.int32),
            "screen_share": share.astype(np.float32),
            "largest_face_row": largest,
            "largest_face_track_id": track,
            "n_largest_face_tracks": np.array(int(track.max()) + 1, dtype=np.int32),
            "frames_with_faces_ratio": np.array(float((counts > 0).mean())),
            "mean_face_count": np.array(float(counts.mean())),
            "max_face_count": np.array(int(counts.max()), dtype=np.int32),
            "mean_screen_share": np.array(float(share.astype(np.float64).mean())),
            "largest_face_mean_center": mean_center.astype(np.float32),
        })

    @staticmethod
    def _largest_track(
        faces: dict[str, np.ndarray], n_frames: int
    ) -> tuple[np.ndarray, np.ndarray]:
        largest = np.full(n_frames, -1, np.int32)
        for row in np.argsort(faces["face_area_ratio"], kind="stable"):
            largest[faces["face_frame"][row]] = row  # ascending: the largest is written last
        track = np.full(n_frames, -1, np.int32)
        current, prev = -1, None
        for i in range(n_frames):
            row = int(largest[i])
            if row < 0:
                prev = None
                continue
            box = faces["face_boxes"][row]
            if prev is None or box_iou(box, prev) < TRACK_IOU:
                current += 1
            track[i], prev = current, box
        return largest, track


def _cat(parts: list[np.ndarray], key: str) -> np.ndarray:
    shapes = {"face_boxes": (0, 4), "face_landmarks": (0, 5, 2)}
    dtype = np.int32 if key == "face_frame" else np.float32
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(shapes.get(key, (0,)), dtype)
