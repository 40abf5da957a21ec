"""The Segmenter on generated clips whose content is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.media import MediaLibrary
from trendflow.contracts.identity import SAMPLING_POLICY_VERSION
from trendflow.errors import MediaError
from trendflow.media import synth
from trendflow.pipeline.sampling import Sampling, union_indices
from trendflow.pipeline.segmenter import PreparedVideo, Segmenter, UploadSource
from trendflow.pipeline.types import VideoMeta
from trendflow.settings import SegmenterSettings


@pytest.fixture
def segmenter() -> Segmenter:
    return Segmenter(SegmenterSettings(chunk_seconds=2.0))


def prepare(segmenter: Segmenter, clip: synth.Clip, tmp_path: Path) -> PreparedVideo:
    return segmenter.prepare(UploadSource(clip.path, VideoMeta(title="t")), tmp_path / "work")


def all_frames(segmenter: Segmenter, prepared: PreparedVideo) -> np.ndarray:
    idx = np.arange(prepared.timeline.n_frames)
    return np.concatenate([c.frames for c in segmenter.iter_chunks(prepared, idx)])


def test_timeline_geometry_and_chunks(
    segmenter: Segmenter, scene_cuts_clip: synth.Clip, tmp_path: Path
) -> None:
    prepared = prepare(segmenter, scene_cuts_clip, tmp_path)
    tl = prepared.timeline
    assert (tl.fps, tl.height, tl.width) == (12.0, 320, 568)  # 192x108 → 568x320, even width
    assert tl.n_frames == round(scene_cuts_clip.duration_s * 12)
    assert tl.sampling_policy_version == SAMPLING_POLICY_VERSION
    assert prepared.info.width == 192 and prepared.info.height == 108
    assert prepared.info.has_audio and prepared.info.source == "upload"
    assert prepared.meta.title == "t"

    chunks = list(segmenter.iter_chunks(prepared, np.arange(tl.n_frames)))
    assert [len(c.frame_indices) for c in chunks] == [24, 24, 24, 24]
    assert [c.index for c in chunks] == [0, 1, 2, 3]
    assert chunks[0].context_index is None and chunks[0].context_frame is None
    for prev, cur in zip(chunks, chunks[1:], strict=False):
        assert cur.context_index == prev.frame_indices[-1]
        np.testing.assert_array_equal(cur.context_frame, prev.frames[-1])
    c = chunks[1]
    assert c.frames.dtype == np.uint8 and c.frames.shape == (24, 320, 568, 3)
    np.testing.assert_allclose(c.timestamps_s, c.frame_indices / 12.0)


def test_cuts_land_on_the_known_timeline_frames(
    segmenter: Segmenter, scene_cuts_clip: synth.Clip, tmp_path: Path
) -> None:
    frames = all_frames(segmenter, prepare(segmenter, scene_cuts_clip, tmp_path))
    means = frames.reshape(len(frames), -1, 3).mean(axis=1)
    jumps = np.abs(np.diff(means, axis=0)).sum(axis=1)
    found = np.flatnonzero(jumps > 20) + 1  # index of the first frame of each new scene
    expected = [round(c * 12) for c in scene_cuts_clip.cuts_s]
    assert found.tolist() == expected


def test_sparse_union_decodes_only_requested_frames(
    segmenter: Segmenter, scene_cuts_clip: synth.Clip, tmp_path: Path
) -> None:
    prepared = prepare(segmenter, scene_cuts_clip, tmp_path)
    n = prepared.timeline.n_frames
    union = union_indices([Sampling.at_fps(1).indices(n, 12.0), Sampling.first(3).indices(n, 12.0)])
    chunks = list(segmenter.iter_chunks(prepared, union))
    got = np.concatenate([c.frame_indices for c in chunks])
    np.testing.assert_array_equal(got, union)
    full = all_frames(segmenter, prepared)
    for c in chunks:
        np.testing.assert_array_equal(c.frames, full[c.frame_indices])
        if c.context_index is not None:
            assert c.context_index == union[union < c.frame_indices[0]][-1]
            np.testing.assert_array_equal(c.context_frame, full[c.context_index])


def test_first_k_stops_early_and_bad_indices_are_refused(
    segmenter: Segmenter, scene_cuts_clip: synth.Clip, tmp_path: Path
) -> None:
    prepared = prepare(segmenter, scene_cuts_clip, tmp_path)
    chunks = list(segmenter.iter_chunks(prepared, np.arange(5)))
    assert len(chunks) == 1 and chunks[0].frame_indices.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        list(segmenter.iter_chunks(prepared, np.array([3, 1])))
    with pytest.raises(ValueError):
        list(segmenter.iter_chunks(prepared, np.array([prepared.timeline.n_frames])))


def test_variable_frame_rate_follows_timestamps(
    segmenter: Segmenter, media: MediaLibrary, tmp_path: Path
) -> None:
    clip = media.clip("vfr")
    prepared = prepare(segmenter, clip, tmp_path)
    assert prepared.info.variable_frame_rate
    assert "vfr_normalize" in [s.kind for s in prepared.info.preprocessing]
    frames = all_frames(segmenter, prepared)
    times = np.asarray(clip.frame_times_s)
    levels = np.asarray(clip.notes["grey_levels"])
    for k in range(len(frames)):
        # FFmpeg's fps filter rounds to the nearest tick: frame k shows the last source frame
        # that starts before (k + 1/2) / fps.
        shown = levels[np.searchsorted(times, (k + 0.5) / 12.0 - 1e-6, side="right") - 1]
        assert abs(float(frames[k].mean()) - shown) < 8, f"timeline frame {k}"


def test_rotated_clip_is_shown_upright(
    segmenter: Segmenter, media: MediaLibrary, tmp_path: Path
) -> None:
    clip = media.clip("rotated")
    prepared = prepare(segmenter, clip, tmp_path)
    assert (prepared.info.width, prepared.info.height) == (108, 192)
    assert prepared.info.rotation == 90
    assert [s.kind for s in prepared.info.preprocessing] == ["rotate"]
    frame = next(iter(segmenter.iter_chunks(prepared, np.array([0])))).frames[0]
    assert frame.shape == (320, 180, 3)
    rows = frame.mean(axis=(1, 2))
    assert rows[-40:].mean() > 200 and rows[:200].mean() < 80  # white band at the bottom


def test_4k_is_downscaled_not_refused(
    segmenter: Segmenter, media: MediaLibrary, tmp_path: Path
) -> None:
    prepared = prepare(segmenter, media.clip("4k"), tmp_path)
    (step,) = prepared.info.preprocessing
    assert step.kind == "downscale" and step.params["to"] == [1920, 1080]
    assert (prepared.info.width, prepared.info.height) == (1920, 1080)
    assert prepared.timeline.width == 568
    assert next(iter(segmenter.iter_chunks(prepared, np.array([0])))).frames.shape[1:] == (
        320, 568, 3
    )


def test_vertical_keeps_height_320(
    segmenter: Segmenter, media: MediaLibrary, tmp_path: Path
) -> None:
    prepared = prepare(segmenter, media.clip("vertical"), tmp_path)
    assert (prepared.timeline.width, prepared.timeline.height) == (180, 320)


def test_audio_is_mono_float32_at_both_rates(
    segmenter: Segmenter, tone_clip: synth.Clip, tmp_path: Path
) -> None:
    audio = segmenter.extract_audio(prepare(segmenter, tone_clip, tmp_path))
    assert audio.present and audio.missing_reason is None
    for rate in (16_000, 48_000):
        x = audio.at(rate)
        assert x.dtype == np.float32 and x.ndim == 1
        assert abs(len(x) / rate - tone_clip.duration_s) < 0.1
        mid = x[rate : 4 * rate]
        rms_db = 20 * np.log10(np.sqrt(np.mean(mid.astype(np.float64) ** 2)))
        assert abs(rms_db - tone_clip.tone_rms_dbfs) < 0.5
        spectrum = np.abs(np.fft.rfft(mid))
        assert abs(np.argmax(spectrum) * rate / len(mid) - tone_clip.tone_hz) < 2


def test_no_audio_is_a_documented_state(
    segmenter: Segmenter, no_audio_clip: synth.Clip, tmp_path: Path
) -> None:
    prepared = prepare(segmenter, no_audio_clip, tmp_path)
    assert not prepared.info.has_audio
    audio = segmenter.extract_audio(prepared)
    assert not audio.present and audio.missing_reason == "no_audio_stream"
    with pytest.raises(KeyError, match="16000 Hz"):
        audio.at(16_000)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("empty", "unsupported_media"),
        ("random_bytes", "unsupported_media"),
        ("image", "unsupported_media"),
        ("audio_only", "unsupported_media"),
        ("truncated", "video_file_corrupted"),
        ("3s", "video_too_short"),
        ("21min", "video_too_long"),
    ],
)
def test_bad_input_gets_its_code_and_leaves_nothing(
    segmenter: Segmenter, media: MediaLibrary, tmp_path: Path, name: str, code: str
) -> None:
    workdir = tmp_path / "work"
    with pytest.raises(MediaError) as err:
        segmenter.prepare(UploadSource(media.path(name), VideoMeta()), workdir)
    assert err.value.code == code
    assert err.value.message  # says why
    assert not workdir.exists()
    assert media.path(name).exists()  # the upload itself is not the Segmenter's to delete


def test_release_removes_only_segmenter_files(
    segmenter: Segmenter, scene_cuts_clip: synth.Clip, tmp_path: Path
) -> None:
    prepared = prepare(segmenter, scene_cuts_clip, tmp_path)
    segmenter.release(prepared)
    assert not (prepared.workdir / "segmenter").exists()
    assert scene_cuts_clip.path.exists()
