"""Union frames kept in the result store and read back, whole or the frame of one moment."""

from __future__ import annotations

import uuid
from pathlib import Path

import cv2
import numpy as np

from trendflow.media import synth
from trendflow.pipeline.frames_archive import archive_chunk, nearest_frame, read_archive
from trendflow.pipeline.segmenter import Segmenter, UploadSource
from trendflow.pipeline.types import VideoMeta
from trendflow.settings import SegmenterSettings
from trendflow.storage.local import LocalStore


async def test_frames_round_trip_through_the_store(
    scene_cuts_clip: synth.Clip, tmp_path: Path
) -> None:
    seg = Segmenter(SegmenterSettings(chunk_seconds=2.0))
    prepared = seg.prepare(UploadSource(scene_cuts_clip.path, VideoMeta()), tmp_path / "w")
    store = LocalStore(tmp_path / "store")
    run_id = str(uuid.uuid4())
    union = np.arange(0, prepared.timeline.n_frames, 6)
    chunks = list(seg.iter_chunks(prepared, union))
    raw = sum(c.frames.nbytes for c in chunks)
    stored = 0
    for c in chunks:
        stored += (await archive_chunk(store, run_id, c, prepared.timeline)).size
    assert stored < raw / 5  # compact
    back = await read_archive(store, run_id)
    assert [b.index for b in back] == [c.index for c in chunks]
    for b, c in zip(back, chunks, strict=True):
        np.testing.assert_array_equal(b.frame_indices, c.frame_indices)
        assert np.abs(b.frames.astype(int) - c.frames.astype(int)).mean() < 4
    keys = await store.list(f"frames/{run_id}/")
    assert keys and all(k.startswith(f"frames/{run_id}/chunk-") for k in keys)


async def test_the_nearest_kept_frame_of_any_moment_is_found_in_one_or_two_chunks(
    scene_cuts_clip: synth.Clip, tmp_path: Path
) -> None:
    seg = Segmenter(SegmenterSettings(chunk_seconds=2.0))
    prepared = seg.prepare(UploadSource(scene_cuts_clip.path, VideoMeta()), tmp_path / "w")
    store = LocalStore(tmp_path / "store")
    run_id = str(uuid.uuid4())
    fps = prepared.timeline.fps
    # sparse, with no frame in [2 s, 4 s): that chunk is never written
    union = np.array([0, 1.5, 4.5, 6.0, 7.5]) * fps
    chunks = list(seg.iter_chunks(prepared, union.astype(np.int64)))
    for c in chunks:
        await archive_chunk(store, run_id, c, prepared.timeline)
    assert [c.index for c in chunks] == [0, 2, 3]
    kept = np.concatenate([c.timestamps_s for c in chunks])
    frames = np.concatenate([c.frames for c in chunks])
    for t in np.arange(0.0, 9.0, 0.25):
        got = await nearest_frame(store, run_id, float(t), chunk_seconds=2.0)
        assert got is not None
        best = float(np.min(np.abs(kept - t)))
        assert abs(got.timestamp_s - t) == best, (t, got.timestamp_s)
        picture = cv2.cvtColor(cv2.imdecode(np.frombuffer(got.jpeg, np.uint8), cv2.IMREAD_COLOR),
                               cv2.COLOR_BGR2RGB)
        i = int(np.flatnonzero(kept == got.timestamp_s)[0])
        assert np.abs(picture.astype(int) - frames[i].astype(int)).mean() < 4
    assert await nearest_frame(store, str(uuid.uuid4()), 1.0, chunk_seconds=2.0) is None
