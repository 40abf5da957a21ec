"""``face_emotion``: 7-class facial expression of every face ``faces`` found (Triton).

Reads the frames ``faces`` sampled (same sampling) and its boxes; each face box (clipped to the
frame) is cropped, converted to grey (BT.601) and resized to 64×64 (area interpolation), then
classified by the mapped model (default ``face_emotion:1``, mini-Xception from ``fer``) in requests
of its ``max_batch_size``. Classes, in order: :data:`LABELS` (checked against the model's
``labels`` parameter).

Rows follow ``faces``: row ``i`` here is face row ``i`` there (``face_frame`` repeats it).
Video level: ``emotion_distribution`` = mean probabilities over every face;
``dominant_share`` = share of faces whose most likely class is each class.
``faces`` empty → ``empty_reason = no_faces_in_video``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import cv2
import numpy as np

from trendflow.contracts.arrays import ArraySpec
from trendflow.contracts.empty import EmptyReason
from trendflow.errors import ComponentError
from trendflow.pipeline.components.base import (
    Component,
    ComponentChunk,
    ComponentContext,
    ComponentResult,
    Input,
    Resources,
    frame_outputs,
)
from trendflow.pipeline.components.faces import Faces
from trendflow.pipeline.components.model_backed import BoundModel, bind_model, infer_batched
from trendflow.pipeline.sampling import Sampling

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
CROP = 64


def face_crop(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Grey uint8 ``[64, 64]`` crop of a normalised ``[x1, y1, x2, y2]`` box of RGB ``frame``."""
    h, w = frame.shape[:2]
    x1, x2 = int(np.floor(box[0] * w)), int(np.ceil(box[2] * w))
    y1, y2 = int(np.floor(box[1] * h)), int(np.ceil(box[3] * h))
    x1, y1 = max(0, x1), max(0, y1)
    x2, y2 = min(w, max(x2, x1 + 1)), min(h, max(y2, y1 + 1))
    grey = cv2.cvtColor(np.ascontiguousarray(frame[y1:y2, x1:x2]), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (CROP, CROP), interpolation=cv2.INTER_AREA)


class FaceEmotion(Component):
    """Per-face expression probabilities and video distribution (see the module docstring).

    ``RESOURCES``: crops are 4 KB each; the worker holds one chunk's crops. The model is small
    (mini-Xception, < 100 MB in Triton).
    """

    NAME: ClassVar[str] = "face_emotion"
    SCHEMA_VERSION: ClassVar[int] = 1
    PRODUCER_VERSION: ClassVar[str] = "1.0.0"
    RESOURCES: ClassVar[Resources] = Resources(cpus=1.0, memory_mb=64, gpu_memory_mb=512)
    USES_MODEL_SERVER: ClassVar[bool] = True
    TIER: ClassVar[int] = 1
    INPUTS: ClassVar[frozenset[Input]] = frozenset({Input.FRAMES, Input.COMPONENTS})
    SAMPLING: ClassVar[Sampling | None] = Faces.SAMPLING
    DEPENDS_ON: ClassVar[tuple[str, ...]] = ("faces",)
    MODEL: ClassVar[str | None] = "face_emotion"
    DESCRIPTION: ClassVar[str] = (
        "7-class facial expression per detected face and its video distribution (mini-Xception)."
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._model: BoundModel | None = None
        self._faces: dict[str, np.ndarray] = {}

    @classmethod
    def outputs(cls) -> dict[str, ArraySpec]:
        n = len(LABELS)
        return frame_outputs() | {
            "labels": ArraySpec("<U8", (n,), "Class names, in column order."),
            "face_frame": ArraySpec(
                "int32", ("n_faces",), "Per face: its row in frame_indices (as in faces).", "row"
            ),
            "emotion_probs": ArraySpec(
                "float32", ("n_faces", n), "Per face: class probabilities (sum 1).", "probability"
            ),
            "dominant_emotion": ArraySpec(
                "int32", ("n_faces",), "Per face: index of the most likely class.", "class"
            ),
            "emotion_distribution": ArraySpec(
                "float32", (n,), "Mean class probabilities over every face.", "probability"
            ),
            "dominant_share": ArraySpec(
                "float32", (n,), "Share of faces whose most likely class is each class.", "ratio"
            ),
        }

    def setup(self, ctx: ComponentContext) -> None:
        super().setup(ctx)
        faces = ctx.dependencies.get("faces")
        if faces is None:
            raise ComponentError(f"{self.NAME} needs the output of faces", component=self.NAME)
        self._faces = dict(faces)
        if not self._faces:  # faces was empty: nothing to classify, no model needed
            return
        assert ctx.frame_indices is not None  # frame-based: super().setup checked it
        if not np.array_equal(self._faces["frame_indices"], ctx.frame_indices):
            raise ComponentError(
                f"{self.NAME}: faces sampled other frames than this component",
                component=self.NAME,
            )
        self._model = bind_model(ctx, self.NAME)
        served = self._model.parameter("labels").split(",")
        if tuple(served) != LABELS:
            raise ComponentError(
                f"{self.NAME}: model {self._model.tag} labels {served} are not {list(LABELS)}",
                component=self.NAME,
            )

    def map(self, chunk: ComponentChunk) -> np.ndarray | None:
        if not self._faces:
            return None
        assert self._model is not None and self.ctx is not None
        assert self.ctx.frame_indices is not None
        rows_of = np.searchsorted(self.ctx.frame_indices, chunk.frame_indices)
        face_frame = self._faces["face_frame"]
        picked = np.flatnonzero(np.isin(face_frame, rows_of))
        if not len(picked):
            return np.zeros((0, len(LABELS)), np.float32)
        local = {int(r): i for i, r in enumerate(rows_of)}
        crops = np.stack([
            face_crop(chunk.frames[local[int(face_frame[r])]], self._faces["face_boxes"][r])
            for r in picked
        ])
        probs = np.concatenate(
            [o["PROBS"] for o in infer_batched(self._model, "FACE", crops, ("PROBS",))]
        )
        return probs.astype(np.float32)

    def reduce(self, partials: Sequence[Any]) -> ComponentResult:
        ctx = self.context
        assert ctx.frame_indices is not None and ctx.timestamps_s is not None
        if not self._faces:
            return ComponentResult.empty(EmptyReason.NO_FACES_IN_VIDEO, "faces found no face")
        # Chunks arrive in order and faces' rows are sorted by frame: the rows line up.
        probs = np.concatenate([p for p in partials if p is not None])
        face_frame = self._faces["face_frame"].astype(np.int32)
        if len(probs) != len(face_frame):
            raise ValueError(f"{self.NAME}: {len(probs)} faces classified of {len(face_frame)}")
        dominant = probs.argmax(axis=1).astype(np.int32)
        share = np.bincount(dominant, minlength=len(LABELS)) / len(dominant)
        return ComponentResult({
            "frame_indices": ctx.frame_indices.astype(np.int64),
            "timestamps_s": ctx.timestamps_s.astype(np.float64),
            "labels": np.array(LABELS, dtype="<U8"),
            "face_frame": face_frame,
            "emotion_probs": probs,
            "dominant_emotion": dominant,
            "emotion_distribution": probs.mean(axis=0).astype(np.float32),
            "dominant_share": share.astype(np.float32),
        })
