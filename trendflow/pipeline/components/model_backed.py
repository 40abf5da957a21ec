"""What every Triton-backed component shares: its model, its client, batched calls, text embeddings.

A model-backed component receives its resolved model as ``ComponentContext.model``
(``"name:version"``, optionally ``@<weights sha256>``, pinned in the manifest) and the client as
``ComponentContext.services["triton"]`` (any :class:`~trendflow.triton.client.InferenceClient`).
:func:`bind_model` checks both in ``setup`` — a missing mapping, client, model or version is an
error there, before any frame is decoded; nothing is ever substituted.

Frames go to Triton in requests of at most the model's ``max_batch_size`` rows
(:func:`infer_batched`); the server's dynamic batcher may merge requests further.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trendflow.contracts.profile import ModelRef
from trendflow.errors import ComponentError, DependencyMissing, InvalidProfile, ModelNotFound
from trendflow.pipeline.components.base import ComponentContext
from trendflow.triton.client import InferenceClient, encode_texts

TEXT_EMBEDDER = "text_embedder:1"
"""Default model of the text embeddings that ``ocr_text`` and ``transcript`` compute."""
TEXT_EMBEDDING_DIM = 384


@dataclass(frozen=True, slots=True)
class BoundModel:
    """One served model a component calls: client, name, version and its served config."""

    client: InferenceClient
    name: str
    version: str
    config: Mapping[str, Any]

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def max_batch_size(self) -> int:
        """Rows per request: the config's ``max_batch_size`` (a non-batching model: 1)."""
        return max(1, int(self.config.get("max_batch_size", 0)))

    def parameter(self, key: str) -> str:
        """A ``parameters`` entry of the served config; :class:`ComponentError` when absent."""
        try:
            return str(self.config["parameters"][key]["string_value"])
        except KeyError:
            raise ComponentError(
                f"model {self.tag} has no config parameter {key!r}", model=self.tag
            ) from None

    def output_dims(self, output: str) -> tuple[int, ...]:
        """The declared dims (batch excluded) of ``output``; :class:`ComponentError` if absent."""
        for spec in self.config.get("output", []):
            if spec.get("name") == output:
                return tuple(int(d) for d in spec.get("dims", []))
        raise ComponentError(f"model {self.tag} has no output {output!r}", model=self.tag)

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.client.infer(self.name, self.version, inputs)


def triton_client(ctx: ComponentContext, component: str) -> InferenceClient:
    """The context's Triton client; :class:`DependencyMissing` when the runner gave none."""
    client = ctx.services.get("triton")
    if client is None:
        raise DependencyMissing(
            f"{component} needs a Triton client in ComponentContext.services['triton'] "
            "(pass services={'triton': TritonClient.from_settings(...)} to the runner)",
            component=component, dependency="triton",
        )
    return client


def bind(client: InferenceClient, ref: str, component: str) -> BoundModel:
    """Resolve ``ref`` (``name:version[@digest]``) on the server; ModelNotFound if not served."""
    try:
        parsed = ModelRef.parse(ref)
    except InvalidProfile as exc:
        raise ModelNotFound(
            f"{component}: model reference {ref!r} is not name:version", component=component
        ) from exc
    config = client.model_config(parsed.name, parsed.version)  # ModelNotFound when not served
    return BoundModel(client, parsed.name, parsed.version, config)


def bind_model(ctx: ComponentContext, component: str) -> BoundModel:
    """The component's own mapped model (``ctx.model``), checked against the server."""
    if not ctx.model:
        raise ModelNotFound(
            f"{component} has no model mapping: map it in the profile (e.g. "
            f"{component}: <model>:<version>) or in settings.triton.models",
            component=component,
        )
    return bind(triton_client(ctx, component), ctx.model, component)


def batches(n: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most ``size`` rows covering ``range(n)``."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def infer_batched(
    model: BoundModel, name: str, rows: np.ndarray, outputs: Sequence[str]
) -> list[dict[str, np.ndarray]]:
    """``rows`` (batch first) in requests of at most ``max_batch_size``; one dict per request."""
    return [
        {k: v for k, v in model.infer({name: rows[s]}).items() if k in outputs}
        for s in batches(len(rows), model.max_batch_size)
    ]


def embed_texts(model: BoundModel, texts: Sequence[str]) -> np.ndarray:
    """float32 ``[len(texts), D]`` embeddings of non-empty ``texts`` through a text embedder."""
    if any(not t for t in texts):
        raise ComponentError("empty text cannot be embedded", model=model.tag)
    out = [
        model.infer({"TEXT": encode_texts(list(texts[s]))})["EMBEDDING"]
        for s in batches(len(texts), model.max_batch_size)
    ]
    if not out:
        return np.zeros((0, TEXT_EMBEDDING_DIM), np.float32)
    return np.concatenate(out).astype(np.float32)


def check_text_embedder(model: BoundModel) -> None:
    """The model produces ``EMBEDDING`` of :data:`TEXT_EMBEDDING_DIM` (the schemas' size)."""
    dims = model.output_dims("EMBEDDING")
    if dims != (TEXT_EMBEDDING_DIM,):
        raise ComponentError(
            f"text model {model.tag} outputs EMBEDDING {list(dims)}, the schema needs "
            f"[{TEXT_EMBEDDING_DIM}]", model=model.tag,
        )


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def pack_texts(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Texts as one UTF-8 buffer (uint8 ``[n_bytes]``) and byte spans (int64 ``[n, 2]``).

    ``bytes(buf[a:b]).decode("utf-8")`` gives text ``i`` for ``a, b = spans[i]``. NPZ keys need a
    fixed dtype; this keeps any text length exactly, without pickled objects.
    """
    encoded = [t.encode("utf-8") for t in texts]
    spans = np.zeros((len(encoded), 2), np.int64)
    pos = 0
    for i, e in enumerate(encoded):
        spans[i] = (pos, pos + len(e))
        pos += len(e)
    buf = np.frombuffer(b"".join(encoded), np.uint8).copy() if encoded else np.zeros(0, np.uint8)
    return buf, spans


def unpack_texts(buf: np.ndarray, spans: np.ndarray) -> list[str]:
    """The inverse of :func:`pack_texts`."""
    raw = buf.tobytes()
    return [raw[int(a) : int(b)].decode("utf-8") for a, b in spans]


__all__ = [
    "TEXT_EMBEDDER",
    "TEXT_EMBEDDING_DIM",
    "BoundModel",
    "batches",
    "bind",
    "bind_model",
    "check_text_embedder",
    "embed_texts",
    "infer_batched",
    "pack_texts",
    "sha256_text",
    "triton_client",
    "unpack_texts",
]
