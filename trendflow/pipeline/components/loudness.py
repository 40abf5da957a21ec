"""``loudness``: integrated loudness, loudness range, true peak and the short-term curve.

ITU-R BS.1770-4 / EBU R 128 on the mono 48 kHz track, K-weighted with pyloudnorm's filters
(one filtering pass, in 10 s pieces with the filter state carried over, feeds every measure;
memory does not grow with the track's length beyond the track itself):

- ``integrated_lufs``: 400 ms blocks every 100 ms (75 % overlap), absolute gate −70 LUFS,
  relative gate −10 LU (the same numbers as ``pyloudnorm.Meter.integrated_loudness``);
- ``short_term_lufs``: 3 s windows every 0.1 s (10 Hz), timestamped at the window end;
- ``loudness_range_lu``: EBU Tech 3342 — short-term values gated at −70 LUFS and −20 LU below
  their energy mean, 95th minus 10th percentile; 0 when nothing passes the gates;
- ``true_peak_dbtp``: peak of the track 4× oversampled (polyphase FIR, ``resample_poly``), dBTP;
  ``sample_peak_dbfs``: peak of the samples.

Mono is the programme as extracted (channels downmixed by the Segmenter), so the channel weight
is 1. Digital silence has no finite loudness: values below :data:`FLOOR_LUFS` are stored as
``FLOOR_LUFS`` (and peaks of an all-zero track as ``FLOOR_LUFS`` dB).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from trendflow.contracts.arrays import ArraySpec
from trendflow.contracts.empty import EmptyReason
from trendflow.errors import ComponentError
from trendflow.pipeline.components.base import Component, ComponentResult, Input, Resources

RATE = 48_000
FLOOR_LUFS = -120.0
SHORT_TERM_S = 3.0
SHORT_TERM_HOP_S = 0.1
_BLOCK_S = 0.4


_SEGMENT_S = 0.1  # every window (400 ms blocks, 3 s short-term) is a whole number of these
_BLOCK_SAMPLES = 10 * RATE  # audio is processed in 10 s pieces: memory does not grow with length
_PEAK_PAD = 1024  # context each side of a piece, so oversampling sees no piece edges


def _k_stages(rate: int) -> list[tuple[np.ndarray, np.ndarray, float]]:
    import pyloudnorm

    meter = pyloudnorm.Meter(rate)
    return [(f.b, f.a, f.passband_gain) for f in meter._filters.values()]  # BS.1770 order


def k_weighted(samples: np.ndarray, rate: int = RATE) -> np.ndarray:
    """The K-weighted signal (BS.1770 pre-filter + RLB high-pass), float64, in one piece."""
    from scipy.signal import lfilter

    out = samples.astype(np.float64)
    for b, a, gain in _k_stages(rate):
        out = gain * lfilter(b, a, out)
    return out


def segment_energies(samples: np.ndarray, rate: int = RATE) -> np.ndarray:
    """Sum of squares of the K-weighted signal per 100 ms segment (a partial tail is dropped).

    Filtered piece by piece with the filters' state carried over, so the result equals
    filtering the whole track at once while memory stays bounded by the piece size.
    """
    from scipy.signal import lfilter, lfilter_zi

    seg = round(_SEGMENT_S * rate)
    n_seg = len(samples) // seg
    stages = _k_stages(rate)
    states = [lfilter_zi(b, a) * 0.0 for b, a, _ in stages]
    energies = np.empty(n_seg, dtype=np.float64)
    piece = (_BLOCK_SAMPLES // seg) * seg
    for start in range(0, n_seg * seg, piece):
        x = samples[start : min(start + piece, n_seg * seg)].astype(np.float64)
        for i, (b, a, gain) in enumerate(stages):
            y, states[i] = lfilter(b, a, x, zi=states[i])
            x = gain * y
        energies[start // seg : start // seg + len(x) // seg] = (
            (x * x).reshape(-1, seg).sum(axis=1)
        )
    return energies


def window_power(energies: np.ndarray, size: int, seg: int) -> np.ndarray:
    """Mean square of windows of ``size`` segments, hopping one segment."""
    if len(energies) < size:
        return np.zeros(0)
    csum = np.concatenate([[0.0], np.cumsum(energies)])
    return (csum[size:] - csum[:-size]) / (size * seg)


def _lufs(power: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return -0.691 + 10.0 * np.log10(power)


def integrated_from_blocks(block_power: np.ndarray) -> float:
    """Gated integrated loudness (BS.1770-4) of 400 ms block powers; ``-inf`` when all gated."""
    loud = _lufs(block_power)
    abs_gated = block_power[loud >= -70.0]
    if not len(abs_gated):
        return float("-inf")
    rel = _lufs(np.array([abs_gated.mean()]))[0] - 10.0
    gated = block_power[(loud >= -70.0) & (loud >= rel)]
    return float(_lufs(np.array([gated.mean()]))[0])


def loudness_range(short_term: np.ndarray) -> float:
    """EBU Tech 3342 loudness range of short-term values (LUFS); 0 when nothing passes."""
    abs_gated = short_term[short_term >= -70.0]
    if not len(abs_gated):
        return 0.0
    mean_energy = 10.0 * np.log10(np.mean(np.power(10.0, abs_gated / 10.0)))
    rel_gated = abs_gated[abs_gated >= mean_energy - 20.0]
    if not len(rel_gated):
        return 0.0
    return float(np.percentile(rel_gated, 95) - np.percentile(rel_gated, 10))


def true_peak_dbtp(samples: np.ndarray) -> float:
    """Peak of the 4× oversampled signal (polyphase FIR) in dBTP; ``FLOOR_LUFS`` for silence.

    Oversampled piece by piece, each with :data:`_PEAK_PAD` samples of real context on both
    sides whose outputs are discarded (far longer than the interpolation filter).
    """
    from scipy.signal import resample_poly

    peak = 0.0
    for start in range(0, len(samples), _BLOCK_SAMPLES):
        lo = max(0, start - _PEAK_PAD)
        hi = min(len(samples), start + _BLOCK_SAMPLES + _PEAK_PAD)
        up = resample_poly(samples[lo:hi].astype(np.float64), 4, 1)
        keep = up[4 * (start - lo) : 4 * (min(start + _BLOCK_SAMPLES, len(samples)) - lo)]
        if len(keep):
            peak = max(peak, float(np.max(np.abs(keep))))
    return 20.0 * np.log10(peak) if peak > 0 else FLOOR_LUFS


class Loudness(Component):
    """BS.1770 loudness measures of the 48 kHz track (see the module docstring).

    ``RESOURCES`` were measured by ``benchmarks/bench_components.py``: one core; peak RSS growth
    44 MB analysing 60 s and no further growth at 240 s (10 s pieces), rounded up to the 64 MB
    floor. The track itself (float32, ~11 MB per minute at 48 kHz) is owned by the runner.
    """

    NAME: ClassVar[str] = "loudness"
    SCHEMA_VERSION: ClassVar[int] = 1
    PRODUCER_VERSION: ClassVar[str] = "1.0.0"
    RESOURCES: ClassVar[Resources] = Resources(cpus=1.0, memory_mb=64)
    TIER: ClassVar[int] = 0
    INPUTS: ClassVar[frozenset[Input]] = frozenset({Input.AUDIO})
    DESCRIPTION: ClassVar[str] = "Integrated LUFS, loudness range, true peak, short-term curve."

    @classmethod
    def outputs(cls) -> dict[str, ArraySpec]:
        return {
            "integrated_lufs": ArraySpec(
                "float64", (), f"Integrated gated loudness (floor {FLOOR_LUFS:g}).", "LUFS"
            ),
            "loudness_range_lu": ArraySpec("float64", (), "Loudness range (EBU 3342).", "LU"),
            "true_peak_dbtp": ArraySpec("float64", (), "True peak, 4× oversampled.", "dBTP"),
            "sample_peak_dbfs": ArraySpec("float64", (), "Largest absolute sample.", "dBFS"),
            "short_term_lufs": ArraySpec(
                "float32", ("n_windows",),
                f"Short-term loudness, 3 s windows at 10 Hz (floor {FLOOR_LUFS:g}).", "LUFS",
            ),
            "short_term_times_s": ArraySpec(
                "float64", ("n_windows",), "End time of each short-term window.", "s"
            ),
            "short_term_max_lufs": ArraySpec(
                "float64", (), "Loudest short-term window.", "LUFS"
            ),
        }

    def reduce(self, partials: Sequence[Any]) -> ComponentResult:
        audio = self.context.audio
        if audio is None or not audio.present:
            reason = "no audio track was given" if audio is None else audio.missing_reason
            return ComponentResult.empty(
                EmptyReason.AUDIO_MISSING_OR_EXTRACT_FAILED, reason or "the audio track is empty"
            )
        samples = audio.at(RATE)
        block = round(_BLOCK_S * RATE)
        if len(samples) < block:
            raise ComponentError(
                f"{self.NAME}: {len(samples) / RATE:.3f} s of audio is shorter than one "
                f"{_BLOCK_S} s loudness block",
                component=self.NAME,
            )
        seg = round(_SEGMENT_S * RATE)
        energies = segment_energies(samples)
        blocks = window_power(energies, round(_BLOCK_S / _SEGMENT_S), seg)
        integrated = integrated_from_blocks(blocks)
        st_size = min(round(SHORT_TERM_S / _SEGMENT_S), len(energies))
        st_power = window_power(energies, st_size, seg)
        short_term = np.maximum(_lufs(st_power), FLOOR_LUFS)
        ends = (np.arange(len(st_power)) + st_size) * _SEGMENT_S
        sample_peak = max(float(samples.max()), -float(samples.min()))  # no full-length temp
        return ComponentResult(
            {
                "integrated_lufs": np.array(max(integrated, FLOOR_LUFS)),
                "loudness_range_lu": np.array(loudness_range(short_term)),
                "true_peak_dbtp": np.array(true_peak_dbtp(samples)),
                "sample_peak_dbfs": np.array(
                    20.0 * np.log10(sample_peak) if sample_peak > 0 else FLOOR_LUFS
                ),
                "short_term_lufs": short_term.astype(np.float32),
                "short_term_times_s": ends.astype(np.float64),
                "short_term_max_lufs": np.array(float(short_term.max())),
            }
        )
