"""``speech_activity``: where people speak — segments and speech ratio (Triton, Silero VAD).

The whole 16 kHz mono track goes to the mapped VAD model (default ``vad:1``) in one request, so
its recurrent state runs over the clip without a break; it answers a speech probability per
512-sample window (32 ms). Segments follow Silero's own rule: speech starts where the probability
reaches ``threshold`` and ends where it stays below ``threshold − 0.15`` for at least
``min_silence_ms``; segments shorter than ``min_speech_ms`` are dropped, the rest are padded by
``speech_pad_ms`` on both sides (clipped to the track and merged where they then touch).

``speech_ratio`` = total segment time / track duration. No audio →
``empty_reason = audio_missing_or_extract_failed``; audio without speech is a valid ``ok`` result
with no segments and ratio 0.
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
from trendflow.pipeline.components.model_backed import BoundModel, bind_model

RATE = 16_000
WINDOW = 512
WINDOW_S = WINDOW / RATE


def speech_segments(
    probs: np.ndarray,
    duration_s: float,
    *,
    threshold: float,
    min_speech_ms: float,
    min_silence_ms: float,
    speech_pad_ms: float,
) -> np.ndarray:
    """``[n, 2]`` float64 (start_s, end_s) from per-window probabilities (module docstring)."""
    off = threshold - 0.15
    raw: list[list[float]] = []
    start: int | None = None
    silence_from: int | None = None
    min_silence = min_silence_ms / 1000 / WINDOW_S
    for w, p in enumerate(probs):
        if start is None:
            if p >= threshold:
                start, silence_from = w, None
            continue
        if p >= threshold:
            silence_from = None
        elif p < off:
            silence_from = w if silence_from is None else silence_from
            if w - silence_from + 1 >= min_silence:
                raw.append([start * WINDOW_S, silence_from * WINDOW_S])
                start = silence_from = None
    if start is not None:
        raw.append([start * WINDOW_S, len(probs) * WINDOW_S])
    pad = speech_pad_ms / 1000
    kept: list[list[float]] = []
    for s, e in raw:
        if e - s < min_speech_ms / 1000:
            continue
        s, e = max(0.0, s - pad), min(duration_s, e + pad)
        if kept and s <= kept[-1][1]:
            kept[-1][1] = max(kept[-1][1], e)
        else:
            kept.append([s, e])
    return np.array(kept, dtype=np.float64).reshape(-1, 2)


class SpeechActivity(Component):
    """Speech segments and speech ratio (see the module docstring).

    ``RESOURCES``: the worker holds the 16 kHz track (20 min ≈ 77 MB float32) and the
    probabilities; the VAD model in Triton is ≈ 2 MB.
    """

    NAME: ClassVar[str] = "speech_activity"
    SCHEMA_VERSION: ClassVar[int] = 1
    PRODUCER_VERSION: ClassVar[str] = "1.0.0"
    RESOURCES: ClassVar[Resources] = Resources(cpus=1.0, memory_mb=256, gpu_memory_mb=256)
    USES_MODEL_SERVER: ClassVar[bool] = True
    TIER: ClassVar[int] = 0
    INPUTS: ClassVar[frozenset[Input]] = frozenset({Input.AUDIO})
    MODEL: ClassVar[str | None] = "vad"
    DESCRIPTION: ClassVar[str] = "Speech segments and speech ratio (Silero VAD)."

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._model: BoundModel | None = None

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {"threshold": 0.5, "min_speech_ms": 250, "min_silence_ms": 100,
                "speech_pad_ms": 30}

    @classmethod
    def outputs(cls) -> dict[str, ArraySpec]:
        return {
            "speech_probs": ArraySpec(
                "float32", ("n_windows",), f"Speech probability per {WINDOW}-sample window.",
                "probability",
            ),
            "window_s": ArraySpec("float64", (), "Length of one probability window.", "s"),
            "segments_s": ArraySpec(
                "float64", ("n_segments", 2), "Speech segments [start, end).", "s"
            ),
            "speech_ratio": ArraySpec(
                "float64", (), "Speech time / track duration.", "ratio"
            ),
            "speech_duration_s": ArraySpec("float64", (), "Total speech time.", "s"),
            "audio_duration_s": ArraySpec("float64", (), "Duration of the 16 kHz track.", "s"),
        }

    def setup(self, ctx: ComponentContext) -> None:
        super().setup(ctx)
        if ctx.audio is not None and ctx.audio.present:
            self._model = bind_model(ctx, self.NAME)

    def reduce(self, partials: Sequence[Any]) -> ComponentResult:
        audio = self.context.audio
        if audio is None or not audio.present:
            reason = "no audio track was given" if audio is None else audio.missing_reason
            return ComponentResult.empty(
                EmptyReason.AUDIO_MISSING_OR_EXTRACT_FAILED, reason or "the audio track is empty"
            )
        assert self._model is not None
        samples = audio.at(RATE).astype(np.float32)
        duration = len(samples) / RATE
        probs = self._model.infer({"AUDIO": samples[None]})["PROBS"][0].astype(np.float32)
        p = self.params
        segments = speech_segments(
            probs, duration, threshold=float(p["threshold"]),
            min_speech_ms=float(p["min_speech_ms"]), min_silence_ms=float(p["min_silence_ms"]),
            speech_pad_ms=float(p["speech_pad_ms"]),
        )
        speech = float((segments[:, 1] - segments[:, 0]).sum())
        return ComponentResult({
            "speech_probs": probs,
            "window_s": np.array(WINDOW_S),
            "segments_s": segments,
            "speech_ratio": np.array(speech / duration if duration > 0 else 0.0),
            "speech_duration_s": np.array(speech),
            "audio_duration_s": np.array(duration),
        })
