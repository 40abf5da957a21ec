"""The Segmenter's repair ladder on damaged files: remux, then re-encode, else corrupted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.media import MediaLibrary
from trendflow.errors import VideoFileCorrupted
from trendflow.media import synth
from trendflow.pipeline.segmenter import PreparedVideo, Segmenter, UploadSource
from trendflow.pipeline.types import VideoMeta
from trendflow.settings import SegmenterSettings


@pytest.fixture
def segmenter() -> Segmenter:
    return Segmenter(SegmenterSettings(chunk_seconds=2.0, repair_preset="ultrafast"))


def prepare(segmenter: Segmenter, clip: synth.Clip, workdir: Path) -> PreparedVideo:
    return segmenter.prepare(UploadSource(clip.path, VideoMeta(title="t")), workdir)


def all_frames(segmenter: Segmenter, prepared: PreparedVideo) -> np.ndarray:
    idx = np.arange(prepared.timeline.n_frames)
    return np.concatenate([c.frames for c in segmenter.iter_chunks(prepared, idx)])


def assert_whole_timeline(
    segmenter: Segmenter, prepared: PreparedVideo, clip: synth.Clip
) -> np.ndarray:
    assert abs(prepared.info.duration_s - clip.duration_s) < 0.1
    assert prepared.timeline.n_frames == round(clip.duration_s * 12)
    frames = all_frames(segmenter, prepared)
    assert len(frames) == prepared.timeline.n_frames
    audio = segmenter.extract_audio(prepared)
    # A damaged stretch can also take some audio packets with it (a few AAC frames).
    assert audio.present and abs(audio.duration_s - clip.duration_s) < 0.25
    return frames


def test_lost_transport_packets_are_remuxed_without_reencoding(
    segmenter: Segmenter, media: MediaLibrary, tmp_path: Path
) -> None:
    clip = media.clip("ts_lost_packets")
    prepared = prepare(segmenter, clip, tmp_path / "work")
    (step,) = prepared.info.preprocessing
    assert step.kind == "remux" and "corrupt packets" in step.detail
    assert step.params["dropped_packets"] >= 1
    assert prepared.path.suffix == ".mp4" and prepared.path != clip.path
    assert prepared.path.parent == tmp_path / "work" / "segmenter"
    frames = assert_whole_timeline(segmenter, prepared, clip)
    # The lost packets' frames show the picture before them; the rest is the source's.
    assert np.abs(frames[-1].astype(int) - frames[-2].astype(int)).mean() > 20
    segmenter.release(prepared)
    assert not prepared.path.exists() and clip.path.exists()


def test_undecodable_first_keyframe_is_reencoded_and_keeps_its_length(
    segmenter: Segmenter, media: MediaLibrary, tmp_path: Path
) -> None:
    clip = media.clip("garbled_first_frame")
    prepared = prepare(segmenter, clip, tmp_path / "work")
    (step,) = prepared.info.preprocessing
    assert step.kind == "repair_reencode" and step.params["crf"] == 18
    assert step.params["skipped_packets"] >= 1
    assert "first frame does not decode" in step.params["remux_failed"]
    frames = assert_whole_timeline(segmenter, prepared, clip)
    # The first second (one lost GOP) holds the first picture that decodes, from t = 0, so the
    # pictures keep their times: timeline frame 12 (1 s) is source frame 12 in both.
    diff = lambda a, b: float(np.abs(frames[a].astype(int) - frames[b].astype(int)).mean())  # noqa: E731
    assert diff(0, 11) < 1 and diff(11, 12) < 6
    assert diff(12, 13) > 20  # every source frame is a different texture


def test_a_file_nothing_can_save_is_corrupted_and_leaves_nothing(
    segmenter: Segmenter, media: MediaLibrary, tmp_path: Path
) -> None:
    clip = media.clip("garbled_all")
    workdir = tmp_path / "work"
    with pytest.raises(VideoFileCorrupted) as err:
        prepare(segmenter, clip, workdir)
    assert err.value.code == "video_file_corrupted"
    assert "could not be repaired" in err.value.message
    assert not workdir.exists()
    assert clip.path.exists()


def test_an_existing_workdir_keeps_only_what_was_there(
    segmenter: Segmenter, media: MediaLibrary, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "other.txt").write_text("not the Segmenter's")
    with pytest.raises(VideoFileCorrupted):
        prepare(segmenter, media.clip("garbled_all"), workdir)
    assert [p.name for p in workdir.iterdir()] == ["other.txt"]


def test_damage_inside_later_packets_is_a_clear_error_while_decoding(
    segmenter: Segmenter, tmp_path: Path
) -> None:
    # The container flags nothing and the first frame decodes, so prepare() cannot see it
    # without a full decode; the timeline decode then stops with the documented error.
    clip = synth.garbled_packets(tmp_path / "mid.mp4", first=40, count=3)
    prepared = prepare(segmenter, clip, tmp_path / "work")
    assert prepared.info.preprocessing == ()
    with pytest.raises(VideoFileCorrupted, match="decoding failed part-way"):
        all_frames(segmenter, prepared)
