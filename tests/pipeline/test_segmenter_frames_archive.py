"""Union frames kept in the result store and read back."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np

from trendflow.media import synth
from trendflow.pipeline.frames_archive import archive_chunk, read_archive
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
