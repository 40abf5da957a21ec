"""``loudness``: integrated loudness, loudness range, true peak and the short-term curve.

ITU-R BS.1770-4 / EBU R 128 on the mono 48 kHz track, K-weighted with pyloudnorm's filters
(one filtering pass feeds every measure):

- ``integrated_lufs``: 400 ms blocks, 75 % overlap, absolute gate −70 LUFS, relative gate −10 LU
  (the same numbers as ``pyloudnorm.Meter.integrated_loudness``);
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
_BLOCK_HOP_S = 0.1


def k_weighted(samples: np.ndarray, rate: int = RATE) -> np.ndarray:
    """The K-weighted signal (BS.1770 pre-filter + RLB high-pass), float64."""
    import pyloudnorm

    meter = pyloudnorm.Meter(rate)
    out = samples.astype(np.float64)
    for stage in meter._filters.values():  # the BS.1770 stages, in order
        out = stage.apply_filter(out)
    return out


def _window_power(sq_cumsum: np.ndarray, size: int, hop: int) -> np.ndarray:
    n = len(sq_cumsum) - 1
    if n < size:
        return np.zeros(0)
    starts = np.arange(0, n - size + 1, hop)
    return (sq_cumsum[starts + size] - sq_cumsum[starts]) / size


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
    """Peak of the 4× oversampled signal in dBTP (``FLOOR_LUFS`` for an all-zero track)."""
    from scipy.signal import resample_poly

    peak = float(np.max(np.abs(resample_poly(samples.astype(np.float64), 4, 1))))
    return 20.0 * np.log10(peak) if peak > 0 else FLOOR_LUFS


class Loudness(Component):
    """BS.1770 loudness measures of the 48 kHz track (see the module docstring).

    ``RESOURCES`` were measured by ``benchmarks/bench_components.py``: one core; memory is the
    peak RSS growth while measuring 60 s of audio (float64 copies of the track and the 4×
    oversampled peak signal dominate: about 5 × 8 B × 48,000 × seconds).
    """

    NAME: ClassVar[str] = "loudness"
    SCHEMA_VERSION: ClassVar[int] = 1
    PRODUCER_VERSION: ClassVar[str] = "1.0.0"
    RESOURCES: ClassVar[Resources] = Resources(cpus=1.0, memory_mb=256)
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
            return ComponentResult.empty(
                EmptyReason.AUDIO_MISSING_OR_EXTRACT_FAILED,
                audio.missing_reason if audio is not None else "no audio track was given",
            )
        samples = audio.at(RATE)
        block = round(_BLOCK_S * RATE)
        if len(samples) < block:
            raise ComponentError(
                f"{self.NAME}: {len(samples) / RATE:.3f} s of audio is shorter than one "
                f"{_BLOCK_S} s loudness block",
                component=self.NAME,
            )
        weighted = k_weighted(samples)
        csum = np.concatenate([[0.0], np.cumsum(weighted * weighted)])
        integrated = integrated_from_blocks(_window_power(csum, block, round(_BLOCK_HOP_S * RATE)))
        st_size, st_hop = round(SHORT_TERM_S * RATE), round(SHORT_TERM_HOP_S * RATE)
        st_power = _window_power(csum, min(st_size, len(samples)), st_hop)
        short_term = np.maximum(_lufs(st_power), FLOOR_LUFS)
        ends = (np.arange(len(st_power)) * st_hop + min(st_size, len(samples))) / RATE
        sample_peak = float(np.max(np.abs(samples)))
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
