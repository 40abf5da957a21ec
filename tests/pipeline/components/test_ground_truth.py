"""Components on generated clips whose content is known, through the Segmenter and the runner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.media import MediaLibrary
from tests.pipeline.components._harness import analyse
from trendflow.contracts.arrays import check_arrays
from trendflow.contracts.empty import EmptyReason
from trendflow.pipeline.components import all_components, get_component

FPS = 12.0


def make(*names: str):
    return [get_component(n)() for n in names]


async def test_cuts_found_within_one_analysis_frame(media: MediaLibrary, tmp_path: Path) -> None:
    clip = media.clip("scene_cuts")
    manifest, art, _ = await analyse(clip.path, make("shot_detection"), tmp_path)
    assert manifest.run.status == "ok"
    shots = art["shot_detection"].arrays
    expected = np.round(np.array(clip.cuts_s) * FPS)
    found = shots["cut_frame_indices"]
    assert len(found) == len(expected), (found, expected)
    assert np.all(np.abs(found - expected) <= 1), (found, expected)
    assert shots["shot_lengths_s"].sum() == pytest.approx(clip.duration_s, abs=1 / FPS)
    assert float(shots["cuts_per_minute"]) == pytest.approx(
        len(expected) / (clip.duration_s / 60), rel=0.05
    )


async def test_slow_fade_is_not_a_cut(media: MediaLibrary, tmp_path: Path) -> None:
    clip = media.clip("slow_fade")
    _, art, _ = await analyse(clip.path, make("shot_detection"), tmp_path)
    shots = art["shot_detection"].arrays
    assert int(shots["n_cuts"]) == 0, shots["cut_timestamps_s"]
    assert shots["content_score"].max() > 0  # the picture did change, gradually


async def test_static_clip_is_still_and_pan_moves(media: MediaLibrary, tmp_path: Path) -> None:
    _, still, _ = await analyse(media.path("static"), make("motion"), tmp_path / "s")
    clip = media.clip("pan")
    _, panned, _ = await analyse(clip.path, make("motion"), tmp_path / "p")
    s, p = still["motion"].arrays, panned["motion"].arrays
    assert float(s["motion_mean"]) < 0.01
    assert float(s["static_ratio"]) == 1.0
    # The texture slides left by px_per_frame source pixels per source frame.
    assert clip.motion_px_per_frame is not None and clip.fps is not None and clip.height
    speed = clip.motion_px_per_frame * clip.fps / clip.height  # frame heights per second
    assert float(p["motion_mean"]) > 20 * max(float(s["motion_mean"]), 1e-3)
    assert float(p["camera_motion_mean"]) == pytest.approx(speed, rel=0.25)
    assert np.median(p["camera_dx"][1:]) < 0  # content moves left
    assert float(p["object_motion_mean"]) < 0.25 * float(p["camera_motion_mean"])


async def test_tempo_of_a_120_bpm_click_track(media: MediaLibrary, tmp_path: Path) -> None:
    clip = media.clip("click_track")
    _, art, _ = await analyse(clip.path, make("audio_features"), tmp_path)
    feats = art["audio_features"].arrays
    assert clip.bpm == 120.0
    assert float(feats["tempo_bpm"]) == pytest.approx(120.0, abs=2.0)
    assert int(feats["n_beats"]) >= 10


async def test_loudness_of_a_calibrated_tone(media: MediaLibrary, tmp_path: Path) -> None:
    clip = media.clip("tone")
    _, art, _ = await analyse(clip.path, make("loudness"), tmp_path)
    loud = art["loudness"].arrays
    # A full-scale 1 kHz sine reads -3.01 LUFS (BS.1770), so LUFS = RMS dBFS for a 1 kHz tone.
    assert clip.tone_rms_dbfs is not None and clip.tone_peak_dbfs is not None
    assert float(loud["integrated_lufs"]) == pytest.approx(clip.tone_rms_dbfs, abs=0.5)
    # AAC overshoots where the tone stops abruptly, so the decoded peak is not the source's.
    peak = float(loud["sample_peak_dbfs"])
    assert float(loud["true_peak_dbtp"]) >= peak >= clip.tone_peak_dbfs - 0.5
    assert float(loud["loudness_range_lu"]) < 1.0  # a steady tone has no dynamics
    steady = loud["short_term_lufs"][loud["short_term_times_s"] >= 3.0]
    assert np.all(np.abs(steady - clip.tone_rms_dbfs) < 0.5)


async def test_no_audio_gives_the_empty_reason(media: MediaLibrary, tmp_path: Path) -> None:
    manifest, art, _ = await analyse(
        media.path("no_audio"), make("loudness", "audio_features", "color_stats"), tmp_path
    )
    assert manifest.run.status == "ok"
    for name in ("loudness", "audio_features"):
        rec = manifest.components[name]
        assert rec.status == "empty"
        assert rec.empty_reason == EmptyReason.AUDIO_MISSING_OR_EXTRACT_FAILED
        assert art[name].meta.empty_reason == EmptyReason.AUDIO_MISSING_OR_EXTRACT_FAILED
        assert art[name].arrays == {}
    assert manifest.components["color_stats"].status == "ok"


async def test_every_npz_loads_without_pickle_and_matches_its_schema(
    media: MediaLibrary, tmp_path: Path
) -> None:
    # The CPU set; the Triton-backed components are validated in tests/triton/test_components.py.
    classes = {n: c for n, c in all_components().items()
               if c.RESOURCES.gpu_memory_mb == 0 and not c.USES_MODEL_SERVER}
    manifest, _, store = await analyse(
        media.path("scene_cuts"), [c() for c in classes.values()], tmp_path
    )
    assert manifest.run.status == "ok", manifest.run.error
    for name, rec in manifest.components.items():
        assert rec.status == "ok", (name, rec.error)
        (artifact,) = rec.artifacts
        with np.load(store.root / artifact.key, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files if k != "meta"}
        assert check_arrays(classes[name].outputs(), arrays, where=name) == []
