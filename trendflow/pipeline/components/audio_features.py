"""``audio_features``: tempo, beats, onset rate, spectral statistics, MFCCs and silence (librosa).

On the mono 16 kHz track:

- rhythm — onset strength (mel spectral flux, ``n_fft`` 1024, hop 256 = 16 ms) feeds librosa's
  dynamic-programming beat tracker; ``beat_times_s`` are the tracked beats and ``tempo_bpm`` is
  ``60 / mean inter-beat interval`` (finer than the tracker's lag grid: at 62.5 frames/s its grid
  near 120 BPM is 117.2 / 121.0); 0 with fewer than two beats. ``onset_rate_per_s`` counts
  detected onsets per second of audio;
- spectrum — one magnitude STFT (``n_fft`` 1024, hop 512 = 32 ms, Hann): centroid, 85 % roll-off
  (Hz), flatness (0 tonal … 1 noise-like), zero-crossing rate (crossings per sample), 13 MFCCs
  (128 mel bands, dB); each as mean and standard deviation over frames;
- ``silence_ratio`` — share of STFT frames whose RMS is below :data:`SILENCE_DBFS`.

librosa JIT-compiles parts of itself with numba; :func:`prepare_numba_cache` points numba's
cache at ``settings.components.numba_cache_dir`` (default ``<data_dir>/cache/numba``) before
librosa is imported, so the ~20 s compilation happens once per machine, not once per worker.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from trendflow.contracts.arrays import ArraySpec
from trendflow.contracts.empty import EmptyReason
from trendflow.errors import ComponentError
from trendflow.pipeline.components.base import (
    Component,
    ComponentContext,
    ComponentResult,
    Input,
    Resources,
)

RATE = 16_000
N_FFT = 1024
ONSET_HOP = 256
SPECTRAL_HOP = 512
N_MFCC = 13
SILENCE_DBFS = -50.0

_STATS = {
    "spectral_centroid": ("Spectral centroid", "Hz"),
    "spectral_rolloff": ("Frequency below which 85 % of the spectral energy lies", "Hz"),
    "spectral_flatness": ("Spectral flatness (0 tonal, 1 noise)", "ratio"),
    "zcr": ("Zero-crossing rate", "crossings/sample"),
}


def prepare_numba_cache() -> Path | None:
    """Point numba's on-disk JIT cache at the configured directory (before numba loads).

    Returns the directory in effect, or None when numba was already imported by someone else in
    this process (its cache location is then whatever was set at that time).
    """
    if "numba" in sys.modules:
        return None
    from trendflow.settings import get_settings

    settings = get_settings()
    directory = settings.components.numba_cache_dir or settings.data_dir / "cache" / "numba"
    directory.mkdir(parents=True, exist_ok=True)
    # numba reads only its environment variable; an operator's explicit value wins.
    os.environ.setdefault("NUMBA_CACHE_DIR", str(directory))
    return Path(os.environ["NUMBA_CACHE_DIR"])


class AudioFeatures(Component):
    """Rhythm, spectral and silence statistics of the 16 kHz track (see the module docstring).

    ``RESOURCES`` were measured by ``benchmarks/bench_components.py``: one core; memory is the
    peak RSS growth while analysing 60 s of audio (the STFTs scale with duration: ~4 MB per
    minute for the spectral STFT and ~8 MB per minute for the onset spectrogram).
    """

    NAME: ClassVar[str] = "audio_features"
    SCHEMA_VERSION: ClassVar[int] = 1
    PRODUCER_VERSION: ClassVar[str] = "1.0.0"
    RESOURCES: ClassVar[Resources] = Resources(cpus=1.0, memory_mb=256)
    TIER: ClassVar[int] = 0
    INPUTS: ClassVar[frozenset[Input]] = frozenset({Input.AUDIO})
    DESCRIPTION: ClassVar[str] = (
        "Tempo, beats, onset rate, spectral statistics, MFCC summary, silence ratio."
    )

    @classmethod
    def outputs(cls) -> dict[str, ArraySpec]:
        specs: dict[str, ArraySpec] = {
            "tempo_bpm": ArraySpec(
                "float64", (), "60 / mean interval of tracked beats (0: < 2 beats).", "BPM"
            ),
            "beat_times_s": ArraySpec("float64", ("n_beats",), "Tracked beat times.", "s"),
            "n_beats": ArraySpec("int64", (), "Number of tracked beats.", "count"),
            "onset_rate_per_s": ArraySpec(
                "float64", (), "Detected onsets per second of audio.", "onsets/s"
            ),
        }
        for name, (desc, unit) in _STATS.items():
            specs[f"{name}_mean"] = ArraySpec("float64", (), f"Mean of: {desc}.", unit)
            specs[f"{name}_std"] = ArraySpec(
                "float64", (), f"Standard deviation of: {desc}.", unit
            )
        specs |= {
            "mfcc_mean": ArraySpec("float32", (N_MFCC,), "Mean of each MFCC (0..12).", "dB"),
            "mfcc_std": ArraySpec(
                "float32", (N_MFCC,), "Standard deviation of each MFCC.", "dB"
            ),
            "rms_dbfs_mean": ArraySpec(
                "float64", (), "Mean frame RMS level (frames floored at -120).", "dBFS"
            ),
            "silence_ratio": ArraySpec(
                "float64", (), f"Share of frames with RMS below {SILENCE_DBFS:g} dBFS.", "ratio"
            ),
        }
        return specs

    def setup(self, ctx: ComponentContext) -> None:
        super().setup(ctx)
        prepare_numba_cache()

    def reduce(self, partials: Sequence[Any]) -> ComponentResult:
        audio = self.context.audio
        if audio is None or not audio.present:
            return ComponentResult.empty(
                EmptyReason.AUDIO_MISSING_OR_EXTRACT_FAILED,
                audio.missing_reason if audio is not None else "no audio track was given",
            )
        import librosa

        y = np.ascontiguousarray(audio.at(RATE), dtype=np.float32)
        if len(y) < N_FFT:
            raise ComponentError(
                f"{self.NAME}: {len(y) / RATE:.3f} s of audio is shorter than one "
                f"{N_FFT}-sample analysis frame",
                component=self.NAME,
            )
        duration = len(y) / RATE
        env = librosa.onset.onset_strength(y=y, sr=RATE, n_fft=N_FFT, hop_length=ONSET_HOP)
        _, beats = librosa.beat.beat_track(
            onset_envelope=env, sr=RATE, hop_length=ONSET_HOP, units="time"
        )
        beats = np.asarray(beats, dtype=np.float64)
        tempo = 60.0 / float(np.mean(np.diff(beats))) if len(beats) >= 2 else 0.0
        onsets = librosa.onset.onset_detect(
            onset_envelope=env, sr=RATE, hop_length=ONSET_HOP, units="frames"
        )

        mag = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=SPECTRAL_HOP))
        per_frame = {
            "spectral_centroid": librosa.feature.spectral_centroid(S=mag, sr=RATE)[0],
            "spectral_rolloff": librosa.feature.spectral_rolloff(
                S=mag, sr=RATE, roll_percent=0.85
            )[0],
            "spectral_flatness": librosa.feature.spectral_flatness(S=mag)[0],
            "zcr": librosa.feature.zero_crossing_rate(
                y, frame_length=N_FFT, hop_length=SPECTRAL_HOP
            )[0],
        }
        mel = librosa.feature.melspectrogram(S=mag**2, sr=RATE, n_mels=128)
        mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=N_MFCC)
        rms = librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=SPECTRAL_HOP)[0]
        rms_db = 20.0 * np.log10(np.maximum(rms.astype(np.float64), 1e-6))

        arrays: dict[str, np.ndarray] = {
            "tempo_bpm": np.array(tempo),
            "beat_times_s": beats,
            "n_beats": np.array(len(beats), dtype=np.int64),
            "onset_rate_per_s": np.array(len(onsets) / duration),
        }
        for name, values in per_frame.items():
            v = np.asarray(values, dtype=np.float64)
            arrays[f"{name}_mean"] = np.array(float(v.mean()))
            arrays[f"{name}_std"] = np.array(float(v.std()))
        arrays |= {
            "mfcc_mean": mfcc.mean(axis=1).astype(np.float32),
            "mfcc_std": mfcc.std(axis=1).astype(np.float32),
            "rms_dbfs_mean": np.array(float(rms_db.mean())),
            "silence_ratio": np.array(float((rms_db < SILENCE_DBFS).mean())),
        }
        return ComponentResult(arrays)
