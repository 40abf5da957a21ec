"""``transcript``: what is said — text, timed segments, language, and an embedding (Triton).

Source, in this order (``source`` records which):

1. ``captions`` — the video's own captions (``VideoMeta.captions``, from the Segmenter/YouTube)
   when it has any non-empty segment; no audio is transcribed.
2. ``asr`` — otherwise the 16 kHz track through the mapped speech model (default ``asr:1``,
   Whisper tiny.en). Tracks longer than ``max_piece_s`` are cut into pieces at the quietest
   0.2 s within the last ``cut_search_s`` of each piece (so a cut rarely splits a word); pieces
   go in requests of the model's ``max_batch_size`` and their segment times are shifted back
   onto the track.

Text: the segments' texts joined by single spaces, as UTF-8 (``text_utf8``; segment ``i`` is
``bytes(text_utf8[a:b]).decode()`` for ``a, b = segment_spans[i]``). A transcript is the
product's core, so it is stored by default; ``settings.retention.store_transcript_text = false``
keeps only the counts, the sha256 and the embedding (``text_stored`` says which, spans are then
``[0, 0]``). The text is never logged.

``text_embedding``: the text in pieces of at most :data:`EMBED_WORDS` words (the text model
truncates at 256 tokens) embedded by the text model (param ``text_model``, default
``text_embedder:1``), averaged weighted by words and L2-normalised.

No audio and no captions → ``audio_missing_or_extract_failed``; no words at all →
``no_text_available``.
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
    TEXT_EMBEDDER,
    TEXT_EMBEDDING_DIM,
    BoundModel,
    batches,
    bind,
    bind_model,
    check_text_embedder,
    embed_texts,
    sha256_text,
    triton_client,
)
from trendflow.triton.client import decode_json_rows

RATE = 16_000
EMBED_WORDS = 150
_QUIET_S = 0.2


def cut_points(samples: np.ndarray, max_piece_s: float, search_s: float) -> list[int]:
    """Sample offsets where pieces start (first 0): each piece ≤ ``max_piece_s``, cut at the
    quietest 0.2 s frame in the last ``search_s`` before the limit."""
    limit, search, frame = round(max_piece_s * RATE), round(search_s * RATE), round(_QUIET_S * RATE)
    starts = [0]
    while len(samples) - starts[-1] > limit:
        lo = starts[-1] + limit - search
        window = samples[lo : starts[-1] + limit]
        n = len(window) // frame
        energy = (window[: n * frame].astype(np.float64) ** 2).reshape(n, frame).sum(axis=1)
        starts.append(lo + int(np.argmin(energy)) * frame + frame // 2)
    return starts


def join_segments(texts: Sequence[str]) -> tuple[str, np.ndarray]:
    """The texts joined by single spaces, and each one's UTF-8 byte span in the result."""
    spans = np.zeros((len(texts), 2), np.int64)
    pos = 0
    for i, t in enumerate(texts):
        n = len(t.encode("utf-8"))
        spans[i] = (pos, pos + n)
        pos += n + 1
    return " ".join(texts), spans


class Transcript(Component):
    """Transcript from captions or speech recognition (see the module docstring).

    ``RESOURCES``: the worker holds the 16 kHz track (20 min ≈ 77 MB) and the text; Whisper
    tiny.en runs in Triton (≈ 250 MB RSS on CPU int8, ≈ 1 GB on GPU float16).
    """

    NAME: ClassVar[str] = "transcript"
    SCHEMA_VERSION: ClassVar[int] = 1
    PRODUCER_VERSION: ClassVar[str] = "1.0.0"
    RESOURCES: ClassVar[Resources] = Resources(cpus=1.0, memory_mb=256, gpu_memory_mb=1024)
    USES_MODEL_SERVER: ClassVar[bool] = True
    TIER: ClassVar[int] = 1
    INPUTS: ClassVar[frozenset[Input]] = frozenset({Input.AUDIO, Input.METADATA})
    MODEL: ClassVar[str | None] = "asr"
    DESCRIPTION: ClassVar[str] = (
        "Transcript (captions when the video has them, else Whisper tiny.en): timed segments, "
        "language, text per the retention policy, and its embedding."
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._model: BoundModel | None = None
        self._text_model: BoundModel | None = None

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {"text_model": TEXT_EMBEDDER, "max_piece_s": 120.0, "cut_search_s": 15.0}

    @classmethod
    def outputs(cls) -> dict[str, ArraySpec]:
        return {
            "source": ArraySpec("<U8", (), "Where the text came from: captions | asr."),
            "language": ArraySpec(
                "<U16", (), "Language code of the text ('und' when the source gave none)."
            ),
            "text_stored": ArraySpec(
                "bool", (), "Whether the retention policy let text_utf8 keep the text."
            ),
            "text_utf8": ArraySpec(
                "uint8", ("n_text_bytes",),
                "The whole text, UTF-8, segments joined by spaces (empty unless text_stored).",
                "bytes",
            ),
            "segments_s": ArraySpec(
                "float64", ("n_segments", 2), "Per segment: [start, end] on the track.", "s"
            ),
            "segment_spans": ArraySpec(
                "int64", ("n_segments", 2),
                "Per segment: [start, end) byte range in text_utf8 ([0, 0] unless text_stored).",
                "bytes",
            ),
            "word_count": ArraySpec("int64", (), "Words in the text.", "words"),
            "char_count": ArraySpec("int64", (), "Characters in the text.", "chars"),
            "words_per_minute": ArraySpec(
                "float64", (), "Words per minute of segment time.", "words/min"
            ),
            "text_sha256": ArraySpec("<U64", (), "sha256 (hex) of the UTF-8 text."),
            "text_embedding": ArraySpec(
                "float32", (TEXT_EMBEDDING_DIM,), "Embedding of the text (L2-normalised).",
                "unit vector",
            ),
        }

    def _captions(self) -> list[tuple[float, float, str]]:
        caps = self.context.meta.captions or ()
        return [(c.start_s, c.end_s, c.text.strip()) for c in caps if c.text.strip()]

    def setup(self, ctx: ComponentContext) -> None:
        super().setup(ctx)
        self._text_model = bind(triton_client(ctx, self.NAME), self.params["text_model"],
                                self.NAME)
        check_text_embedder(self._text_model)
        if not self._captions() and ctx.audio is not None and ctx.audio.present:
            self._model = bind_model(ctx, self.NAME)

    def _asr(self, samples: np.ndarray) -> tuple[list[tuple[float, float, str]], str]:
        assert self._model is not None
        starts = cut_points(samples, float(self.params["max_piece_s"]),
                            float(self.params["cut_search_s"]))
        bounds = [*starts, len(samples)]
        pieces = [samples[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        segments: list[tuple[float, float, str]] = []
        languages: list[str] = []
        for s in batches(len(pieces), self._model.max_batch_size):
            group = pieces[s]
            width = max(len(p) for p in group)
            audio = np.zeros((len(group), width), np.float32)
            for i, p in enumerate(group):
                audio[i, : len(p)] = p  # zero padding: silence at the end of shorter pieces
            docs = decode_json_rows(self._model.infer({"AUDIO": audio})["RESULT"])
            for j, doc in enumerate(docs):
                offset = starts[s.start + j] / RATE
                piece_end = offset + len(group[j]) / RATE
                languages.append(str(doc["language"]))
                for a, b, text in doc["segments"]:
                    if str(text).strip():
                        segments.append((offset + float(a), min(offset + float(b), piece_end),
                                         str(text).strip()))
        language = max(set(languages), key=languages.count) if languages else "und"
        return segments, language

    def _embed(self, words: list[str]) -> np.ndarray:
        assert self._text_model is not None
        pieces = [" ".join(words[i : i + EMBED_WORDS]) for i in range(0, len(words), EMBED_WORDS)]
        vectors = embed_texts(self._text_model, pieces)
        weights = np.array([len(p.split()) for p in pieces], np.float64)
        mean = (vectors.astype(np.float64) * weights[:, None]).sum(axis=0) / weights.sum()
        norm = float(np.linalg.norm(mean))
        return (mean / norm if norm > 0 else mean).astype(np.float32)

    def reduce(self, partials: Sequence[Any]) -> ComponentResult:
        ctx = self.context
        segments = self._captions()
        if segments:
            source = "captions"
            language = ctx.meta.captions_language or ctx.meta.language or "und"
        else:
            audio = ctx.audio
            if audio is None or not audio.present:
                return ComponentResult.empty(
                    EmptyReason.AUDIO_MISSING_OR_EXTRACT_FAILED,
                    "no captions and " + (audio.missing_reason or "no audio" if audio is not None
                                          else "no audio track was given"),
                )
            source = "asr"
            segments, language = self._asr(audio.at(RATE))
        text, spans = join_segments([t for _, _, t in segments])
        words = text.split()
        if not words:
            return ComponentResult.empty(
                EmptyReason.NO_TEXT_AVAILABLE, f"the {source} contain no words"
            )
        store = bool(ctx.policy.get("store_transcript_text", True))
        times = np.array([(a, b) for a, b, _ in segments], np.float64).reshape(-1, 2)
        speech_min = float(np.clip(times[:, 1] - times[:, 0], 0, None).sum()) / 60.0
        return ComponentResult(
            {
                "source": np.array(source, dtype="<U8"),
                "language": np.array(language[:16], dtype="<U16"),
                "text_stored": np.array(store),
                "text_utf8": (np.frombuffer(text.encode("utf-8"), np.uint8).copy() if store
                              else np.zeros(0, np.uint8)),
                "segments_s": times,
                "segment_spans": spans if store else np.zeros_like(spans),
                "word_count": np.array(len(words), dtype=np.int64),
                "char_count": np.array(len(text), dtype=np.int64),
                "words_per_minute": np.array(len(words) / speech_min if speech_min > 0 else 0.0),
                "text_sha256": np.array(sha256_text(text), dtype="<U64"),
                "text_embedding": self._embed(words),
            },
            notes=[f"source={source}", f"segments={len(segments)}", f"words={len(words)}"],
        )
