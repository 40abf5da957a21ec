"""The generated clips hold what their ground truth says."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from tests.fixtures.media import MediaLibrary
from trendflow.cli import main
from trendflow.media import synth


def test_scene_cut_clip_matches_its_truth(scene_cuts_clip: synth.Clip) -> None:
    with av.open(str(scene_cuts_clip.path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert c.streams.audio
    assert frames[0].shape == (108, 192, 3)
    means = np.array([f.mean(axis=(0, 1)) for f in frames])
    cuts = np.flatnonzero(np.abs(np.diff(means, axis=0)).sum(axis=1) > 20) + 1
    assert (cuts / scene_cuts_clip.fps).tolist() == list(scene_cuts_clip.cuts_s)


def test_click_track_clicks_on_the_beat(click_track_clip: synth.Clip) -> None:
    with av.open(str(click_track_clip.path)) as c:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    rate = synth.AUDIO_RATE
    envelope = np.abs(audio[: 4 * rate]).reshape(-1, rate // 100).max(axis=1)  # 10 ms bins
    loud = np.flatnonzero(envelope > 0.3)
    onsets = loud[np.insert(np.diff(loud) > 5, 0, True)] / 100.0
    assert np.diff(onsets) == pytest.approx(60.0 / click_track_clip.bpm, abs=0.03)


def test_text_and_face_clips_are_real_pictures(
    text_clip: synth.Clip, face_clip: synth.Clip
) -> None:
    with av.open(str(text_clip.path)) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    dark = (frame.mean(axis=2) < 100).mean()
    assert 0.01 < dark < 0.3  # black glyphs on white
    with av.open(str(face_clip.path)) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert frame.shape == (320, 320, 3) and frame.std() > 30


def test_speech_uses_espeak(media: MediaLibrary) -> None:
    try:
        clip = media.clip("speech")
    except synth.DependencyMissing as exc:
        assert "espeak-ng" in exc.message
        pytest.skip("espeak-ng is not installed")
    with av.open(str(clip.path)) as c:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    rate = synth.AUDIO_RATE
    start, end = clip.notes["speech_start_s"], clip.notes["speech_end_s"]
    assert np.abs(audio[: int(0.8 * rate)]).max() < 0.01  # leading silence
    assert np.sqrt(np.mean(audio[int(start * rate) : int(end * rate)] ** 2)) > 0.01


def test_cli_writes_named_clips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["media", "synth", "static", "random_bytes", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "static.mp4").stat().st_size > 1000
    assert (tmp_path / "random_bytes.mp4").stat().st_size == 64_000
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and '"duration_s": 6.0' in out[0]


def test_unknown_clip_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown clip"):
        synth.generate("nope", tmp_path)
