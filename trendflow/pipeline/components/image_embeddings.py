"""``image_embeddings``: one embedding per sampled frame from an operator-supplied model (Triton).

There is no built-in image-embedding model: the operator registers one (any ONNX image model —
a CLIP image tower, a classifier's penultimate layer …) with ``trendflow models add-image-model``
(docs/triton.md, "Bring your own image model") and maps it in the profile
(``image_embeddings: <name>:<version>``). Unmapped → ``model_not_found``; nothing is substituted.

The served model takes ``IMAGE`` uint8 ``[n, H, W, 3]`` RGB and returns ``EMBEDDING`` fp32
``[n, D]``; ``D`` (``embedding_dim`` in the schema) is read from the served config, so any model
works without code changes. Frames (default 1 fps) go in requests of its ``max_batch_size``.
``video_embedding``: the mean of the frame embeddings, L2-normalised (zeros if the mean is 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from trendflow.contracts.arrays import ArraySpec
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
from trendflow.pipeline.components.model_backed import BoundModel, bind_model, infer_batched
from trendflow.pipeline.sampling import Sampling


class ImageEmbeddings(Component):
    """Per-frame embeddings from the mapped image model (see the module docstring).

    ``RESOURCES``: one request of frames (16 × 320 × 568 × 3 ≈ 9 MB) and ``n_frames × D`` floats
    (20 min at 1 fps, D = 768: 3.7 MB). GPU memory depends on the operator's model; 1 GB covers a
    ViT-B/32 image tower in float32 with batch 16.
    """

    NAME: ClassVar[str] = "image_embeddings"
    SCHEMA_VERSION: ClassVar[int] = 1
    PRODUCER_VERSION: ClassVar[str] = "1.0.0"
    RESOURCES: ClassVar[Resources] = Resources(cpus=1.0, memory_mb=128, gpu_memory_mb=1024)
    USES_MODEL_SERVER: ClassVar[bool] = True
    TIER: ClassVar[int] = 1
    INPUTS: ClassVar[frozenset[Input]] = frozenset({Input.FRAMES})
    SAMPLING: ClassVar[Sampling | None] = Sampling.at_fps(1.0)
    DESCRIPTION: ClassVar[str] = (
        "Per-frame image embeddings from an operator-supplied ONNX model (bring your own)."
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._model: BoundModel | None = None
        self._dim = 0

    @classmethod
    def outputs(cls) -> dict[str, ArraySpec]:
        return frame_outputs() | {
            "embeddings": ArraySpec(
                "float32", ("n_frames", "embedding_dim"),
                "Per frame: the model's embedding (L2-normalised if its spec says so).",
            ),
            "video_embedding": ArraySpec(
                "float32", ("embedding_dim",), "Mean frame embedding, L2-normalised.",
                "unit vector",
            ),
        }

    def setup(self, ctx: ComponentContext) -> None:
        super().setup(ctx)
        model = bind_model(ctx, self.NAME)
        inputs = {i.get("name") for i in model.config.get("input", [])}
        dims = model.output_dims("EMBEDDING")
        if "IMAGE" not in inputs or len(dims) != 1 or dims[0] <= 0:
            raise ComponentError(
                f"{self.NAME}: model {model.tag} is not an image embedder (needs input IMAGE and "
                f"a fixed-size output EMBEDDING [D]; register it with "
                "`trendflow models add-image-model`)", component=self.NAME,
            )
        self._model, self._dim = model, dims[0]

    def map(self, chunk: ComponentChunk) -> np.ndarray:
        assert self._model is not None
        outs = infer_batched(self._model, "IMAGE", chunk.frames, ("EMBEDDING",))
        emb = np.concatenate([o["EMBEDDING"] for o in outs]).astype(np.float32)
        if emb.shape != (len(chunk.frames), self._dim):
            raise ValueError(
                f"{self.NAME}: model answered {emb.shape} for {len(chunk.frames)} frames "
                f"of dimension {self._dim}"
            )
        return emb

    def reduce(self, partials: Sequence[Any]) -> ComponentResult:
        ctx = self.context
        assert ctx.frame_indices is not None and ctx.timestamps_s is not None
        emb = np.concatenate(partials) if partials else np.zeros((0, self._dim), np.float32)
        if len(emb) != len(ctx.frame_indices):
            raise ValueError(
                f"{self.NAME}: {len(emb)} frames embedded, {len(ctx.frame_indices)} sampled"
            )
        mean = emb.astype(np.float64).mean(axis=0) if len(emb) else np.zeros(self._dim)
        norm = float(np.linalg.norm(mean))
        return ComponentResult({
            "frame_indices": ctx.frame_indices.astype(np.int64),
            "timestamps_s": ctx.timestamps_s.astype(np.float64),
            "embeddings": emb,
            "video_embedding": (mean / norm if norm > 0 else mean).astype(np.float32),
        })
