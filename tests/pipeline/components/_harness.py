"""Run one component over in-memory frames/audio the way the runners do (chunks, context frames,
select_chunk, map, reduce), so component tests need no video file."""

from __future__ import annotations

import numpy as np

from trendflow.contracts.identity import SAMPLING_POLICY_VERSION
from trendflow.pipeline.components.base import (
    Component,
    ComponentContext,
    ComponentResult,
    select_chunk,
)
from trendflow.pipeline.sampling import timestamps_for
from trendflow.pipeline.types import AudioTrack, FrameChunk, Timeline, VideoInfo, VideoMeta


def make_context(
    component: type[Component],
    *,
    n_frames: int,
    fps: float = 12.0,
    size: tuple[int, int] = (64, 36),
    audio: AudioTrack | None = None,
    meta: VideoMeta | None = None,
    video: VideoInfo | None = None,
) -> ComponentContext:
    width, height = size
    timeline = Timeline(fps, width, height, n_frames, SAMPLING_POLICY_VERSION)
    indices = ts = None
    if component.frame_based():
        assert component.SAMPLING is not None
        indices = component.SAMPLING.indices(n_frames, fps)
        ts = timestamps_for(indices, fps)
    info = video or VideoInfo(
        duration_s=n_frames / fps, fps=fps, width=width, height=height,
        has_audio=audio is not None and audio.present, video_codec="h264",
        audio_codec="aac" if audio is not None and audio.present else None, container="mp4",
    )
    return ComponentContext(
        video=info, meta=meta or VideoMeta(), timeline=timeline,
        frame_indices=indices, timestamps_s=ts, audio=audio,
    )


def union_chunks(frames: np.ndarray, union: np.ndarray, fps: float, size: int):
    """FrameChunks over the ``union`` timeline indices of ``frames`` (all timeline frames)."""
    for c, start in enumerate(range(0, len(union), size)):
        idx = union[start : start + size]
        ctx_idx = int(union[start - 1]) if start else None
        yield FrameChunk(
            index=c, frame_indices=idx, timestamps_s=timestamps_for(idx, fps),
            frames=frames[idx], context_index=ctx_idx,
            context_frame=frames[ctx_idx] if ctx_idx is not None else None,
        )


def run_on_frames(
    component: Component,
    frames: np.ndarray,
    *,
    fps: float = 12.0,
    chunk_size: int = 48,
    union: np.ndarray | None = None,
) -> ComponentResult:
    """Map ``component`` over ``frames`` (the whole timeline, ``[n, H, W, 3]``) and reduce."""
    n, h, w = frames.shape[:3]
    ctx = make_context(type(component), n_frames=n, fps=fps, size=(w, h))
    component.setup(ctx)
    assert ctx.frame_indices is not None
    union = ctx.frame_indices if union is None else union
    partials = []
    for chunk in union_chunks(frames, union, fps, chunk_size):
        mine = select_chunk(chunk, ctx.frame_indices)
        if len(mine.frame_indices):
            partials.append(component.map(mine))
    return component.reduce(partials)


def run_on_audio(
    component: Component, samples: dict[int, np.ndarray] | None, duration_s: float
) -> ComponentResult:
    audio = AudioTrack(samples or {}, duration_s, None if samples else "no audio stream")
    ctx = make_context(type(component), n_frames=round(duration_s * 12), audio=audio)
    component.setup(ctx)
    return component.reduce([])


async def analyse(
    clip_path, components: list[Component], tmp_path, *, meta: VideoMeta | None = None
):
    """Run ``components`` on a real clip through the local runner; the manifest and every
    component's decoded artifact (``NpzArtifact``) by name."""
    from trendflow.contracts.identity import RunIdentity, upload_video_id
    from trendflow.contracts.keys import artifact_key
    from trendflow.contracts.npz import decode_npz
    from trendflow.pipeline.runner import run_local
    from trendflow.pipeline.segmenter import UploadSource
    from trendflow.storage.local import LocalStore

    identity = RunIdentity.create(
        platform_id="upload", video_id=upload_video_id(clip_path), config_hash="0" * 64
    )
    store = LocalStore(tmp_path / "store")
    manifest = await run_local(
        identity, components, UploadSource(clip_path, meta or VideoMeta(title="clip")),
        store, tmp_path / "work",
    )
    artifacts = {}
    for name, rec in manifest.components.items():
        if rec.status in ("ok", "empty"):
            key = artifact_key(identity.platform_id, identity.video_id, identity.run_id, name)
            artifacts[name] = decode_npz(await store.get_bytes(key), where=key)
    return manifest, artifacts, store
