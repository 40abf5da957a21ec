"""``text_embeddings``: the title and the description as sentence embeddings (Triton).

Both fields go to the mapped text model (default ``text_embedder:1``, all-MiniLM-L6-v2:
mean-pooled, L2-normalised, 384-d; the model truncates at 256 tokens) in one request. An empty
field (after stripping whitespace) is not embedded: its vector is all zeros and its ``*_empty``
flag is set. Both empty → ``empty_reason = no_text_available``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from trendflow.contracts.arrays import ArraySpec
from trendflow.contracts.empty import EmptyReason
from trendflow.pipeline.components.base import (
    Component,
    ComponentContext,
    ComponentResult,
    Input,
    Resources,
)
from trendflow.pipeline.components.model_backed import (
    TEXT_EMBEDDING_DIM,
    BoundModel,
    bind_model,
    check_text_embedder,
    embed_texts,
)

FIELDS = ("title", "description")


class TextEmbeddings(Component):
    """Title and description embeddings (see the module docstring).

    ``RESOURCES``: the worker only encodes two strings and waits on Triton (one core, well under
    64 MB); the model's own memory is Triton's (about 200 MB RSS for the embedder on CPU).
    """

    NAME: ClassVar[str] = "text_embeddings"
    SCHEMA_VERSION: ClassVar[int] = 1
    PRODUCER_VERSION: ClassVar[str] = "1.0.0"
    RESOURCES: ClassVar[Resources] = Resources(cpus=1.0, memory_mb=64, gpu_memory_mb=512)
    USES_MODEL_SERVER: ClassVar[bool] = True
    TIER: ClassVar[int] = 0
    INPUTS: ClassVar[frozenset[Input]] = frozenset({Input.METADATA})
    MODEL: ClassVar[str | None] = "text_embedder"
    DESCRIPTION: ClassVar[str] = (
        "Title and description embeddings (all-MiniLM-L6-v2, 384-d, L2-normalised)."
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._model: BoundModel | None = None

    @classmethod
    def outputs(cls) -> dict[str, ArraySpec]:
        specs: dict[str, ArraySpec] = {}
        for f in FIELDS:
            specs[f"{f}_embedding"] = ArraySpec(
                "float32", (TEXT_EMBEDDING_DIM,),
                f"Embedding of the {f} (L2-normalised; all zeros when the {f} is empty).",
                "unit vector",
            )
            specs[f"{f}_empty"] = ArraySpec("bool", (), f"The {f} is empty or whitespace.")
            specs[f"{f}_chars"] = ArraySpec(
                "int64", (), f"Length of the {f} in characters (before truncation).", "chars"
            )
        return specs

    def setup(self, ctx: ComponentContext) -> None:
        super().setup(ctx)
        self._model = bind_model(ctx, self.NAME)
        check_text_embedder(self._model)

    def reduce(self, partials: Sequence[Any]) -> ComponentResult:
        meta = self.context.meta
        assert self._model is not None
        texts = {"title": meta.title.strip(), "description": meta.description.strip()}
        present = [f for f in FIELDS if texts[f]]
        if not present:
            return ComponentResult.empty(
                EmptyReason.NO_TEXT_AVAILABLE, "title and description are both empty"
            )
        vectors = embed_texts(self._model, [texts[f] for f in present])
        arrays: dict[str, np.ndarray] = {}
        for f in FIELDS:
            vec = np.zeros(TEXT_EMBEDDING_DIM, np.float32)
            if f in present:
                vec = vectors[present.index(f)]
            arrays[f"{f}_embedding"] = vec
            arrays[f"{f}_empty"] = np.array(f not in present)
            arrays[f"{f}_chars"] = np.array(len(texts[f]), dtype=np.int64)
        return ComponentResult(arrays)
