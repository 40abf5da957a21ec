"""Kept union frames: ``frames/<run_id>/chunk-NNNNNN.npz`` in the result store (7 days).

Format ``jpeg-in-npz/v1`` — one NPZ per timeline chunk, readable with ``allow_pickle=False``:

============== ======== ============================================================
key            dtype    meaning
============== ======== ============================================================
frame_indices  int64    timeline indices of the frames, ``[n]``
timestamps_s   float64  ``frame_indices / fps``, ``[n]``
jpeg           uint8    the n JPEG images (RGB, baseline) back to back
jpeg_offsets   int64    ``[n + 1]``: image ``i`` is ``jpeg[offsets[i]:offsets[i+1]]``
meta           str      0-d JSON: format, run_id, chunk, fps, width, height, quality,
                        sampling_policy_version
============== ======== ============================================================

At quality 85 a 568×320 frame takes ~20–40 kB, about 1/20 of the raw RGB. The retention job
deletes the whole ``frames/<run_id>/`` prefix after ``segmenter.frames_retention_days``.

Chunk ``k`` holds the union frames of timeline seconds ``[k·chunk_seconds, (k+1)·chunk_seconds)``
(the Segmenter's chunking), so :func:`nearest_frame` finds the frame of a moment by reading one
chunk (two at a chunk's edge), never the whole archive.
"""

from __future__ import annotations

import bisect
import io
import json
import re
from dataclasses import dataclass

import cv2
import numpy as np

from trendflow.contracts.keys import frame_key, frames_prefix
from trendflow.errors import ContractViolation
from trendflow.pipeline.types import FrameChunk, Timeline
from trendflow.storage.base import ObjectInfo, ResultStore

FORMAT = "jpeg-in-npz/v1"
_CHUNK_NAME = re.compile(r"chunk-(\d{6})\.npz")


@dataclass(frozen=True, slots=True)
class ArchivedChunk:
    """A chunk read back from the archive."""

    index: int
    frame_indices: np.ndarray
    timestamps_s: np.ndarray
    frames: np.ndarray  # uint8 [n, H, W, 3] RGB (JPEG-decoded, so not bit-exact)
    meta: dict[str, object]


@dataclass(frozen=True, slots=True)
class ArchivedFrame:
    """One kept frame as stored: its place on the timeline and its JPEG bytes."""

    frame_index: int
    timestamp_s: float
    jpeg: bytes


def chunk_name(index: int) -> str:
    return f"chunk-{index:06d}.npz"


def encode_chunk(chunk: FrameChunk, timeline: Timeline, run_id: str, quality: int) -> bytes:
    """The NPZ bytes of one chunk (see the module docstring)."""
    blobs: list[bytes] = []
    for rgb in chunk.frames:
        ok, buf = cv2.imencode(
            ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
        )
        if not ok:
            raise ContractViolation("JPEG encoding of a timeline frame failed", chunk=chunk.index)
        blobs.append(buf.tobytes())
    offsets = np.zeros(len(blobs) + 1, np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    meta = {
        "format": FORMAT, "run_id": run_id, "chunk": chunk.index, "fps": timeline.fps,
        "width": timeline.width, "height": timeline.height, "quality": quality,
        "sampling_policy_version": timeline.sampling_policy_version,
    }
    out = io.BytesIO()
    np.savez(
        out,
        frame_indices=np.asarray(chunk.frame_indices, np.int64),
        timestamps_s=np.asarray(chunk.timestamps_s, np.float64),
        jpeg=np.frombuffer(b"".join(blobs), np.uint8),
        jpeg_offsets=offsets,
        meta=np.array(json.dumps(meta, sort_keys=True)),
    )
    return out.getvalue()


def decode_chunk(data: bytes) -> ArchivedChunk:
    """Read one archived chunk back into RGB frames."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        if meta.get("format") != FORMAT:
            raise ContractViolation(f"not a {FORMAT} frames archive", format=meta.get("format"))
        jpeg, offsets = npz["jpeg"], npz["jpeg_offsets"]
        frames = np.empty((len(offsets) - 1, meta["height"], meta["width"], 3), np.uint8)
        for i in range(len(frames)):
            bgr = cv2.imdecode(jpeg[offsets[i] : offsets[i + 1]], cv2.IMREAD_COLOR)
            if bgr is None:
                raise ContractViolation(
                    "a frame of the archive is not a decodable JPEG",
                    chunk=meta.get("chunk"), frame=i,
                )
            frames[i] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return ArchivedChunk(
            int(meta["chunk"]), npz["frame_indices"], npz["timestamps_s"], frames, meta
        )


async def archive_chunk(
    store: ResultStore, run_id: str, chunk: FrameChunk, timeline: Timeline, *, quality: int = 85
) -> ObjectInfo:
    """Write one chunk under ``frames/<run_id>/`` (atomic per object)."""
    data = encode_chunk(chunk, timeline, run_id, quality)
    return await store.put_bytes(frame_key(run_id, chunk_name(chunk.index)), data)


async def read_archive(store: ResultStore, run_id: str) -> list[ArchivedChunk]:
    """Every archived chunk of a run, in timeline order."""
    keys = await store.list(frames_prefix(run_id))
    return [decode_chunk(await store.get_bytes(k)) for k in keys if k.endswith(".npz")]


def _chunk_frames(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(frame_indices, timestamps_s, jpeg, jpeg_offsets)`` of a chunk, nothing decoded."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        if meta.get("format") != FORMAT:
            raise ContractViolation(f"not a {FORMAT} frames archive", format=meta.get("format"))
        return npz["frame_indices"], npz["timestamps_s"], npz["jpeg"], npz["jpeg_offsets"]


async def nearest_frame(
    store: ResultStore, run_id: str, t_s: float, *, chunk_seconds: float
) -> ArchivedFrame | None:
    """The kept frame nearest the moment ``t_s`` (seconds on the timeline), as its stored JPEG;
    None when the archive holds no frame of the run (deleted by retention, or never kept).

    ``chunk_seconds`` is the Segmenter's chunk length: it names the chunk holding ``t_s``; a
    neighbouring chunk is read too when ``t_s`` falls before the first or after the last frame
    of its own (or its own holds no frame and was not written).
    """
    kept: dict[int, str] = {}
    for key in await store.list(frames_prefix(run_id)):
        if (m := _CHUNK_NAME.fullmatch(key.rsplit("/", 1)[-1])) is not None:
            kept[int(m.group(1))] = key
    if not kept:
        return None
    order = sorted(kept)
    want = int(max(t_s, 0.0) // chunk_seconds)
    at = bisect.bisect_left(order, want)
    own = at < len(order) and order[at] == want
    reads = [want] if own else [order[j] for j in (at - 1, at) if 0 <= j < len(order)]
    best: ArchivedFrame | None = None
    for index in reads:
        indices, times, jpeg, offsets = _chunk_frames(await store.get_bytes(kept[index]))
        if not len(times):
            continue
        if own and t_s < times[0] and at > 0:
            reads.append(order[at - 1])
        elif own and t_s > times[-1] and at + 1 < len(order):
            reads.append(order[at + 1])
        own = False  # the neighbours are read whole, without looking further
        i = int(np.argmin(np.abs(times - t_s)))
        if best is None or abs(times[i] - t_s) < abs(best.timestamp_s - t_s):
            best = ArchivedFrame(int(indices[i]), float(times[i]),
                                 jpeg[offsets[i] : offsets[i + 1]].tobytes())
    return best
