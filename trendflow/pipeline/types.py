"""Plain data that flows from the Segmenter to the components.

Everything here is picklable and cheap to move, except the frame arrays inside
:class:`FrameChunk`, which the Ray runtime sends through the object store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np


@dataclass(frozen=True, slots=True)
class CaptionSegment:
    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True, slots=True)
class VideoMeta:
    """What the source says about the video: YouTube metadata, or what the user typed in."""

    title: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    channel: str | None = None
    published_at: datetime | None = None  # timezone-aware UTC when known
    duration_s: float | None = None  # as the source claims it; the probe is authoritative
    view_count: int | None = None
    like_count: int | None = None
    comment_count: int | None = None
    language: str | None = None
    captions: tuple[CaptionSegment, ...] | None = None  # None: the source had none
    captions_language: str | None = None
    # YouTube category id (22 = People & Blogs, …; yt-dlp gives the name, mapped by
    # metadata_features) and the channel's subscriber count — what the forecast reads.
    category_id: int | None = None
    channel_follower_count: int | None = None


@dataclass(frozen=True, slots=True)
class PreprocessingStep:
    """One thing the Segmenter did to the file before analysis (goes to ``video.preprocessing``)."""

    kind: Literal["remux", "repair_reencode", "downscale", "rotate", "vfr_normalize", "other"]
    detail: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """The probed facts of the (possibly repaired) video that is analysed."""

    duration_s: float
    fps: float  # average source frame rate
    width: int  # display width after rotation and downscale
    height: int
    has_audio: bool
    video_codec: str
    audio_codec: str | None
    container: str
    rotation: int = 0  # degrees applied to reach display orientation
    variable_frame_rate: bool = False
    source: Literal["youtube", "upload", "url"] = "upload"
    preprocessing: tuple[PreprocessingStep, ...] = ()


@dataclass(frozen=True, slots=True)
class Timeline:
    """The analysis timeline: ``n_frames`` RGB frames of ``height × width`` at ``fps``."""

    fps: float
    width: int
    height: int
    n_frames: int
    sampling_policy_version: str

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps


@dataclass(slots=True)
class FrameChunk:
    """A run of decoded union frames, in timeline order.

    ``frames[i]`` is timeline frame ``frame_indices[i]`` (uint8, ``[n, H, W, 3]``, RGB).
    ``context_index``/``context_frame`` is the last union frame *before* this chunk (None for the
    first chunk), so a component that compares neighbouring frames can map chunks independently.
    """

    index: int
    frame_indices: np.ndarray  # int64 [n]
    timestamps_s: np.ndarray  # float64 [n]
    frames: np.ndarray  # uint8 [n, H, W, 3]
    context_index: int | None = None
    context_frame: np.ndarray | None = None  # uint8 [H, W, 3]

    @property
    def nbytes(self) -> int:
        extra = self.context_frame.nbytes if self.context_frame is not None else 0
        return int(self.frames.nbytes + extra)


@dataclass(slots=True)
class AudioTrack:
    """Mono float32 audio at each extracted rate, or why there is none.

    ``samples`` maps a sample rate (Hz) to a 1-D float32 array in [-1, 1]. When the video has no
    audio stream, or extraction failed, ``samples`` is empty and ``missing_reason`` says which;
    audio components turn that into ``empty_reason = audio_missing_or_extract_failed``.
    """

    samples: dict[int, np.ndarray]
    duration_s: float
    missing_reason: str | None = None

    @property
    def present(self) -> bool:
        return bool(self.samples)

    def at(self, rate: int) -> np.ndarray:
        """The samples at ``rate``; KeyError names the rates that exist."""
        try:
            return self.samples[rate]
        except KeyError:
            raise KeyError(
                f"audio at {rate} Hz was not extracted (have {sorted(self.samples)})"
            ) from None
