"""``audio_features``: tempo, beats, onset rate, spectral statistics, MFCCs and silence (librosa).

On the mono 16 kHz track, framed without padding (frame ``j`` = samples
``[j·hop, j·hop + 1024)``, periodic Hann window) and processed in pieces of
:data:`BLOCK_FRAMES` frames, so memory does not grow with duration beyond the track itself:

- rhythm — onset strength = spectral flux of a 128-band mel spectrogram in dB (hop 256 = 16 ms;
  positive differences averaged over bands); its global autocorrelation (lags up to 8 s, with
  librosa's log-normal prior around 120 BPM) gives the tempo that librosa's dynamic-programming
  beat tracker follows;
  ``beat_times_s`` are the tracked beats (frame centres) and ``tempo_bpm`` is
  ``60 / mean inter-beat interval`` (finer than the tracker's lag grid: at 62.5 frames/s its grid
  near 120 BPM is 117.2 / 121.0); 0 with fewer than two beats. ``onset_rate_per_s`` counts
  librosa's onset peaks per second of audio;
- spectrum — per frame (hop 512 = 32 ms): centroid and 85 % roll-off of the magnitude spectrum
  (Hz), flatness of the power spectrum (0 tonal … 1 noise-like), zero-crossing rate (crossings
  per sample), 13 MFCCs (DCT of the 128-band mel power in dB, not clipped), RMS level (dBFS,
  floored at −120); each summarised as mean and standard deviation over frames;
- ``silence_ratio`` — share of frames whose RMS is below :data:`SILENCE_DBFS`.

librosa JIT-compiles parts of itself with numba; :func:`prepare_numba_cache` points numba's
cache at ``settings.components.numba_cache_dir`` (default ``<data_dir>/cache/numba``) before
librosa is imported, so the ~20 s compilation happens once per machine, not once per worker;
:func:`warm_numba_cache` makes that compilation one process at a time (numba's cache of a
``guvectorize`` function is two files written separately, and processes compiling the same
function at once can leave a mismatched pair that crashes the next process loading it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
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
N_MELS = 128
SILENCE_DBFS = -50.0
AC_SIZE_S = 8.0  # longest beat period considered by the tempo estimate
BLOCK_FRAMES = 4096  # frames per piece: ~65 s of onset frames, ~131 s of spectral frames
_FRAME_CENTRE_S = N_FFT / 2 / RATE  # frame j is centred at j·hop + n_fft/2

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


_warmed = False


def warm_numba_cache(directory: Path | None) -> None:
    """Compile (or load) librosa's cached numba functions this component uses, one process at a
    time: under an exclusive lock on the cache directory the first process compiles and writes
    complete cache files, the others wait and then only read them.

    Without it, workers compiling beat tracking at once can mix the two files numba writes for
    one ``guvectorize`` function and the next reader dies with SIGSEGV (numba issue 10128,
    librosa issue 1998). Once per process.
    """
    global _warmed
    if _warmed:
        return
    import fcntl
    import tempfile

    where = directory or Path(os.environ.get("NUMBA_CACHE_DIR") or tempfile.gettempdir())
    where.mkdir(parents=True, exist_ok=True)
    with open(where / ".trendflow-numba.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            _rhythm(np.random.default_rng(0).standard_normal(2 * RATE).astype(np.float32) * 0.1,
                    _mel_basis())
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    _warmed = True


def _mel_basis() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=RATE, n_fft=N_FFT, n_mels=N_MELS)


def _rhythm(y: np.ndarray, mel_basis: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(bpm, beat frames, onset frames) of a 16 kHz signal: the numba-compiled part."""
    import librosa

    env = onset_envelope(y, mel_basis)
    # librosa's own tempo estimate builds a local tempogram of the whole track (hundreds of
    # MB for 20 minutes); one global autocorrelation column gives the same estimate for a
    # steady tempo at a fixed, small cost.
    ac = librosa.autocorrelate(
        env.astype(np.float64), max_size=round(AC_SIZE_S * RATE / ONSET_HOP)
    )
    if ac[0] > 0:
        ac = ac / np.abs(ac).max()
    bpm = float(librosa.feature.tempo(tg=ac[:, None], sr=RATE, hop_length=ONSET_HOP)[0])
    beat_frames = librosa.beat.beat_track(
        onset_envelope=env, sr=RATE, hop_length=ONSET_HOP, bpm=bpm, units="frames"
    )[1]
    onsets = librosa.onset.onset_detect(
        onset_envelope=env, sr=RATE, hop_length=ONSET_HOP, units="frames"
    )
    return bpm, np.asarray(beat_frames), np.asarray(onsets)


class AudioFeatures(Component):
    """Rhythm, spectral and silence statistics of the 16 kHz track (see the module docstring).

    ``RESOURCES`` were measured by ``benchmarks/bench_components.py``: one core; peak RSS growth
    73 MB analysing 60 s of audio plus 6.0 MB per further minute (measured at 240 s),
    extrapolated to the 20-minute maximum (~187 MB) and rounded up to 16 MB.
    """

    NAME: ClassVar[str] = "audio_features"
    SCHEMA_VERSION: ClassVar[int] = 1
    PRODUCER_VERSION: ClassVar[str] = "1.0.0"
    RESOURCES: ClassVar[Resources] = Resources(cpus=1.0, memory_mb=192)
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

    @classmethod
    def warm_up(cls) -> None:
        # The numba functions are this component's cold start: ~40 s compiling into an empty
        # cache, ~5 s loading it in each new process (measured on the 2-core machine).
        warm_numba_cache(prepare_numba_cache())

    def setup(self, ctx: ComponentContext) -> None:
        super().setup(ctx)
        self.warm_up()  # once per process: a no-op when the worker was warmed

    def reduce(self, partials: Sequence[Any]) -> ComponentResult:
        audio = self.context.audio
        if audio is None or not audio.present:
            reason = "no audio track was given" if audio is None else audio.missing_reason
            return ComponentResult.empty(
                EmptyReason.AUDIO_MISSING_OR_EXTRACT_FAILED, reason or "the audio track is empty"
            )

        y = np.ascontiguousarray(audio.at(RATE), dtype=np.float32)
        if len(y) < N_FFT:
            raise ComponentError(
                f"{self.NAME}: {len(y) / RATE:.3f} s of audio is shorter than one "
                f"{N_FFT}-sample analysis frame",
                component=self.NAME,
            )
        duration = len(y) / RATE
        mel_basis = _mel_basis()
        bpm, beat_frames, onsets = _rhythm(y, mel_basis)
        beats = np.asarray(beat_frames, dtype=np.float64) * ONSET_HOP / RATE + _FRAME_CENTRE_S
        tempo = 60.0 / float(np.mean(np.diff(beats))) if len(beats) >= 2 else 0.0

        sums = _SpectralSums()
        for frames in _blocks(y, SPECTRAL_HOP):
            sums.add(frames, mel_basis)
        arrays: dict[str, np.ndarray] = {
            "tempo_bpm": np.array(tempo),
            "beat_times_s": beats,
            "n_beats": np.array(len(beats), dtype=np.int64),
            "onset_rate_per_s": np.array(len(onsets) / duration),
        }
        for name in _STATS:
            mean, std = sums.mean_std(name)
            arrays[f"{name}_mean"] = np.array(float(mean))
            arrays[f"{name}_std"] = np.array(float(std))
        mfcc_mean, mfcc_std = sums.mean_std("mfcc")
        rms_mean, _ = sums.mean_std("rms_db")
        arrays |= {
            "mfcc_mean": np.asarray(mfcc_mean, dtype=np.float32),
            "mfcc_std": np.asarray(mfcc_std, dtype=np.float32),
            "rms_dbfs_mean": np.array(float(rms_mean)),
            "silence_ratio": np.array(sums.silent / sums.n),
        }
        return ComponentResult(arrays)


def _blocks(y: np.ndarray, hop: int) -> Iterator[np.ndarray]:
    """The track as frames ``[n_fft, n]`` (frame ``j`` = samples ``[j·hop, j·hop + n_fft)``),
    produced :data:`BLOCK_FRAMES` at a time so memory does not grow with duration."""
    total = 1 + (len(y) - N_FFT) // hop
    for first in range(0, total, BLOCK_FRAMES):
        count = min(BLOCK_FRAMES, total - first)
        piece = y[first * hop : (first + count - 1) * hop + N_FFT]
        yield np.lib.stride_tricks.sliding_window_view(piece, N_FFT)[::hop].T


def _power(frames: np.ndarray) -> np.ndarray:
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa
    return np.abs(np.fft.rfft(frames * window[:, None], axis=0)) ** 2


def onset_envelope(y: np.ndarray, mel_basis: np.ndarray) -> np.ndarray:
    """Spectral flux of the mel spectrogram in dB (positive differences, mean over bands).

    One value per :data:`ONSET_HOP` frame; frame 0 is 0. Computed block by block with one frame
    of overlap, so the result does not depend on the block size.
    """
    import librosa

    parts: list[np.ndarray] = []
    previous: np.ndarray | None = None
    for frames in _blocks(y, ONSET_HOP):
        mel_db = librosa.power_to_db(mel_basis @ _power(frames), top_db=None)
        joined = mel_db if previous is None else np.concatenate([previous, mel_db], axis=1)
        flux = np.maximum(0.0, np.diff(joined, axis=1)).mean(axis=0)
        parts.append(flux if previous is not None else np.concatenate([[0.0], flux]))
        previous = mel_db[:, -1:]
    return np.concatenate(parts).astype(np.float32)


class _SpectralSums:
    """Running sums (and sums of squares) of the per-frame spectral measures."""

    def __init__(self) -> None:
        self.n = 0
        self.silent = 0
        self.sum: dict[str, np.ndarray] = {}
        self.sq: dict[str, np.ndarray] = {}

    def add(self, frames: np.ndarray, mel_basis: np.ndarray) -> None:
        import librosa

        power = _power(frames)
        mag = np.sqrt(power)
        freqs = np.fft.rfftfreq(N_FFT, 1.0 / RATE)[:, None]
        total = mag.sum(axis=0)
        safe = np.where(total > 0, total, 1.0)
        centroid = np.where(total > 0, (freqs * mag).sum(axis=0) / safe, 0.0)
        cumulative = np.cumsum(mag, axis=0)
        rolloff_bin = (cumulative < 0.85 * cumulative[-1:]).sum(axis=0)
        rolloff = np.where(total > 0, freqs[np.minimum(rolloff_bin, len(freqs) - 1), 0], 0.0)
        floor = np.maximum(power, 1e-10)
        flatness = np.exp(np.log(floor).mean(axis=0)) / floor.mean(axis=0)
        signs = np.signbit(frames)
        zcr = (signs[1:] != signs[:-1]).mean(axis=0)
        rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=0))
        rms_db = 20.0 * np.log10(np.maximum(rms, 1e-6))
        mel_db = librosa.power_to_db(mel_basis @ power, top_db=None)
        mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=N_MFCC)
        values = {
            "spectral_centroid": centroid,
            "spectral_rolloff": rolloff,
            "spectral_flatness": flatness,
            "zcr": zcr,
            "rms_db": rms_db,
            "mfcc": mfcc,
        }
        for name, v in values.items():
            v = np.asarray(v, dtype=np.float64)
            self.sum[name] = self.sum.get(name, 0.0) + v.sum(axis=-1)
            self.sq[name] = self.sq.get(name, 0.0) + (v * v).sum(axis=-1)
        self.n += frames.shape[1]
        self.silent += int((rms_db < SILENCE_DBFS).sum())

    def mean_std(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        mean = self.sum[name] / self.n
        var = np.maximum(self.sq[name] / self.n - mean * mean, 0.0)
        return mean, np.sqrt(var)
