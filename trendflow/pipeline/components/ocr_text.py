"""``ocr_text``: on-screen text — where, how much, how sure, and (only if allowed) what (Triton).

Frames (default 1 fps) go to the mapped OCR model (default ``ocr:1``, PP-OCRv4 detection,
direction classification and recognition) in requests of its ``max_batch_size``.

Layout — flat arrays with a frame column, like ``faces``: every text line read is one row of the
``box_*`` keys; ``box_frame`` is its row in ``frame_indices``; ``box_quads`` are the four corner
points normalised to the frame (x by width, y by height).

Retention (``settings.retention.store_raw_ocr_text``, false by default, reaches the component as
``ComponentContext.policy``): raw text is user content, so by default the artifact keeps, per
line, only its length and the sha256 of its UTF-8 text (equal lines have equal hashes, so
repeated overlays stay countable) and, for the whole video, one embedding of the distinct lines
(joined by newlines, in first-seen order) through the text model (param ``text_model``, default
``text_embedder:1``). When the policy allows, ``text_utf8``/``text_spans`` also hold every line
(``bytes(text_utf8[a:b]).decode()``); otherwise ``text_utf8`` is empty and every span is
``[0, 0]`` — ``raw_text_stored`` says which.

``text_area_ratio`` per frame: the area of the union of its line quads / frame area (rasterised
at 1/4 resolution). Nothing read in any frame → ``empty_reason = no_text_available``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import cv2
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
from trendflow.pipeline.components.model_backed import (
    TEXT_EMBEDDER,
    TEXT_EMBEDDING_DIM,
    BoundModel,
    bind,
    bind_model,
    check_text_embedder,
    embed_texts,
    infer_batched,
    pack_texts,
    sha256_text,
    triton_client,
)
from trendflow.pipeline.sampling import Sampling
from trendflow.triton.client import decode_json_rows

_GRID = 4
_PER_BOX = ("box_frame", "box_quads", "box_scores")


def quads_area_share(quads: np.ndarray, height: int, width: int) -> float:
    """Share of the frame covered by the union of normalised quads ``[k, 4, 2]``."""
    if not len(quads):
        return 0.0
    gh, gw = max(1, height // _GRID), max(1, width // _GRID)
    mask = np.zeros((gh, gw), np.uint8)
    pts = np.rint(quads * np.array([gw, gh], np.float32)).astype(np.int32)
    cv2.fillPoly(mask, list(pts), 1)
    return float(mask.mean())


class OcrText(Component):
    """On-screen text per sampled frame (see the module docstring).

    ``RESOURCES``: one request of frames (8 × 320 × 568 × 3 ≈ 4.4 MB) plus the lines; the OCR
    models run in Triton (≈ 300 MB RSS on CPU).
    """

    NAME: ClassVar[str] = "ocr_text"
    SCHEMA_VERSION: ClassVar[int] = 1
    PRODUCER_VERSION: ClassVar[str] = "1.0.0"
    RESOURCES: ClassVar[Resources] = Resources(cpus=1.0, memory_mb=128, gpu_memory_mb=1024)
    USES_MODEL_SERVER: ClassVar[bool] = True
    TIER: ClassVar[int] = 1
    INPUTS: ClassVar[frozenset[Input]] = frozenset({Input.FRAMES})
    SAMPLING: ClassVar[Sampling | None] = Sampling.at_fps(1.0)
    MODEL: ClassVar[str | None] = "ocr"
    DESCRIPTION: ClassVar[str] = (
        "On-screen text: line boxes, confidences, area per frame; raw text only if the "
        "retention policy allows, else lengths, sha256 hashes and an embedding (PP-OCRv4)."
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._model: BoundModel | None = None
        self._text_model: BoundModel | None = None

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {"text_model": TEXT_EMBEDDER}

    @classmethod
    def outputs(cls) -> dict[str, ArraySpec]:
        return frame_outputs() | {
            "box_frame": ArraySpec(
                "int32", ("n_boxes",), "Per line: its row in frame_indices.", "row"
            ),
            "box_quads": ArraySpec(
                "float32", ("n_boxes", 4, 2), "Per line: corner points (x, y), normalised.", "0-1"
            ),
            "box_scores": ArraySpec(
                "float32", ("n_boxes",), "Per line: recognition confidence.", "0-1"
            ),
            "text_lengths": ArraySpec(
                "int32", ("n_boxes",), "Per line: length of the text read.", "chars"
            ),
            "text_sha256": ArraySpec(
                "<U64", ("n_boxes",), "Per line: sha256 (hex) of its UTF-8 text."
            ),
            "raw_text_stored": ArraySpec(
                "bool", (), "Whether the retention policy let text_utf8 keep the raw text."
            ),
            "text_utf8": ArraySpec(
                "uint8", ("n_text_bytes",),
                "Every line's text, UTF-8, concatenated (empty unless raw_text_stored).", "bytes",
            ),
            "text_spans": ArraySpec(
                "int64", ("n_boxes", 2),
                "Per line: [start, end) byte range in text_utf8 ([0, 0] unless raw_text_stored).",
                "bytes",
            ),
            "text_embedding": ArraySpec(
                "float32", (TEXT_EMBEDDING_DIM,),
                "Embedding of the distinct lines joined by newlines (L2-normalised).",
                "unit vector",
            ),
            "box_count": ArraySpec("int32", ("n_frames",), "Per frame: lines read.", "lines"),
            "text_area_ratio": ArraySpec(
                "float32", ("n_frames",), "Per frame: share of the frame covered by text.", "ratio"
            ),
            "frame_mean_score": ArraySpec(
                "float32", ("n_frames",), "Per frame: mean line confidence (0 without text).",
                "0-1",
            ),
            "frames_with_text_ratio": ArraySpec(
                "float64", (), "Share of sampled frames with any text.", "ratio"
            ),
            "mean_text_area_ratio": ArraySpec(
                "float64", (), "Mean text_area_ratio over sampled frames.", "ratio"
            ),
            "distinct_lines": ArraySpec(
                "int32", (), "Number of distinct line texts in the video.", "lines"
            ),
        }

    def setup(self, ctx: ComponentContext) -> None:
        super().setup(ctx)
        self._model = bind_model(ctx, self.NAME)
        self._text_model = bind(triton_client(ctx, self.NAME), self.params["text_model"],
                                self.NAME)
        check_text_embedder(self._text_model)

    def map(self, chunk: ComponentChunk) -> dict[str, Any]:
        assert self._model is not None
        h, w = chunk.frames.shape[1:3]
        rows: dict[str, list[np.ndarray]] = {k: [] for k in _PER_BOX}
        texts: list[str] = []
        count = np.zeros(len(chunk.frames), np.int32)
        area = np.zeros(len(chunk.frames), np.float32)
        mean_score = np.zeros(len(chunk.frames), np.float32)
        i = 0
        for out in infer_batched(self._model, "IMAGE", chunk.frames,
                                 ("BOXES", "SCORES", "COUNT", "TEXTS")):
            lines_per_frame = decode_json_rows(out["TEXTS"])
            for b, lines in enumerate(lines_per_frame):
                k = int(out["COUNT"][b, 0])
                if len(lines) != k:
                    raise ValueError(f"{self.NAME}: {k} boxes but {len(lines)} texts")
                quads = np.clip(out["BOXES"][b, :k] / np.array([w, h], np.float32), 0.0, 1.0)
                scores = out["SCORES"][b, :k].astype(np.float32)
                rows["box_frame"].append(np.full(k, i, np.int32))
                rows["box_quads"].append(quads.astype(np.float32))
                rows["box_scores"].append(scores)
                texts.extend(str(t) for t in lines)
                count[i] = k
                area[i] = quads_area_share(quads, h, w)
                mean_score[i] = float(scores.mean()) if k else 0.0
                i += 1
        if i != len(chunk.frames):
            raise ValueError(f"{self.NAME}: OCR answered {i} frames for {len(chunk.frames)}")
        return {**rows, "texts": texts, "box_count": count, "text_area_ratio": area,
                "frame_mean_score": mean_score}

    def reduce(self, partials: Sequence[Any]) -> ComponentResult:
        ctx = self.context
        assert ctx.frame_indices is not None and ctx.timestamps_s is not None
        assert self._text_model is not None
        per: dict[str, list[np.ndarray]] = {k: [] for k in _PER_BOX}
        texts: list[str] = []
        offset = 0
        for p in partials:
            for k in _PER_BOX:
                per[k].extend(x + offset if k == "box_frame" else x for x in p[k])
            texts.extend(p["texts"])
            offset += len(p["box_count"])
        boxes = {
            "box_frame": np.concatenate(per["box_frame"] or [np.zeros(0, np.int32)]),
            "box_quads": np.concatenate(per["box_quads"] or [np.zeros((0, 4, 2), np.float32)]),
            "box_scores": np.concatenate(per["box_scores"] or [np.zeros(0, np.float32)]),
        }
        frame_keys = ("box_count", "text_area_ratio", "frame_mean_score")
        frames = {k: np.concatenate([p[k] for p in partials]) if partials else np.zeros(0)
                  for k in frame_keys}
        if len(frames["box_count"]) != len(ctx.frame_indices):
            raise ValueError(
                f"{self.NAME}: {len(frames['box_count'])} frames read, "
                f"{len(ctx.frame_indices)} sampled"
            )
        distinct = list(dict.fromkeys(t.strip() for t in texts if t.strip()))
        if not distinct:
            return ComponentResult.empty(
                EmptyReason.NO_TEXT_AVAILABLE,
                f"no text read in {len(ctx.frame_indices)} sampled frames",
            )
        store_raw = bool(ctx.policy.get("store_raw_ocr_text", False))
        if store_raw:
            buf, spans = pack_texts(texts)
        else:
            buf, spans = np.zeros(0, np.uint8), np.zeros((len(texts), 2), np.int64)
        embedding = embed_texts(self._text_model, ["\n".join(distinct)])[0]
        share = frames["text_area_ratio"].astype(np.float64)
        return ComponentResult({
            "frame_indices": ctx.frame_indices.astype(np.int64),
            "timestamps_s": ctx.timestamps_s.astype(np.float64),
            **boxes,
            "text_lengths": np.array([len(t) for t in texts], dtype=np.int32),
            "text_sha256": np.array([sha256_text(t) for t in texts], dtype="<U64"),
            "raw_text_stored": np.array(store_raw),
            "text_utf8": buf,
            "text_spans": spans,
            "text_embedding": embedding.astype(np.float32),
            "box_count": frames["box_count"].astype(np.int32),
            "text_area_ratio": frames["text_area_ratio"].astype(np.float32),
            "frame_mean_score": frames["frame_mean_score"].astype(np.float32),
            "frames_with_text_ratio": np.array(float((frames["box_count"] > 0).mean())),
            "mean_text_area_ratio": np.array(float(share.mean())),
            "distinct_lines": np.array(len(distinct), dtype=np.int32),
        })
