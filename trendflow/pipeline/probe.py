"""Probing a media file with PyAV: what it claims, and what its packets actually hold.

:func:`probe` reads the container header and decodes one frame (cheap); :func:`scan_packets`
demuxes every video packet without decoding (I/O only) to find where the video really ends,
whether packets are damaged and whether the frame rate varies. Both raise the media errors of
:mod:`trendflow.errors` with the reason in the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from trendflow.errors import UnsupportedMedia, VideoFileCorrupted

# Demuxers FFmpeg uses for single pictures: a still image is not a video.
_IMAGE_FORMAT_MARKERS = ("image2", "_pipe", "gif", "webp")
# FFmpeg's text-art "video" decoders (the tty/bin/xbin/idf demuxers render any text or byte
# soup as ANSI art): what they decode is never a video.
_TEXT_ART_CODECS = frozenset({"ansi", "bintext", "xbin", "idf"})
# ISO-BMFF top-level boxes: a file starting with one is an MP4/MOV, however broken.
_MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What the container says about itself, plus the first frame's facts."""

    container: str
    claimed_duration_s: float  # video stream's duration, else the container's
    fps: float
    width: int  # coded size
    height: int
    rotation: int  # degrees counter-clockwise to reach display orientation (0/90/180/270)
    video_codec: str
    has_audio: bool
    audio_codec: str | None
    first_frame_ok: bool  # the first video frame decoded without error


@dataclass(frozen=True, slots=True)
class PacketScan:
    """What demuxing the whole video stream found (no decoding)."""

    n_packets: int
    start_s: float  # earliest video presentation time
    end_s: float  # latest presentation time + its duration
    corrupt_packets: int
    demux_error: str | None  # the error that stopped demuxing early, if any
    variable_frame_rate: bool
    average_fps: float

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)


def _looks_like_mp4(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(12)
    return len(head) >= 8 and head[4:8] in _MP4_BOXES


def open_media(path: Path) -> av.container.InputContainer:
    """Open ``path`` for reading, turning FFmpeg's refusal into a media error."""
    if not path.is_file():
        raise UnsupportedMedia(f"no such file: {path.name}")
    if path.stat().st_size == 0:
        raise UnsupportedMedia("the file is empty", file=path.name)
    try:
        return av.open(str(path), mode="r")
    except (av.error.FFmpegError, ValueError) as exc:
        if _looks_like_mp4(path):
            raise VideoFileCorrupted(
                "the MP4 file is damaged: FFmpeg cannot read its structure", file=path.name
            ) from exc
        raise UnsupportedMedia(
            "the file is not a video FFmpeg can read", file=path.name
        ) from exc


def _rotation(frame: av.VideoFrame) -> int:
    return int(round(getattr(frame, "rotation", 0) or 0)) % 360


def probe(path: Path) -> ProbeResult:
    """Container facts and the first frame of ``path``; refuses images and audio-only files."""
    with open_media(path) as container:
        fmt = container.format.name
        if any(marker in fmt for marker in _IMAGE_FORMAT_MARKERS):
            raise UnsupportedMedia(f"a still image ({fmt}), not a video", file=path.name)
        if not container.streams.video:
            kind = "an audio-only file" if container.streams.audio else "a file with no video"
            raise UnsupportedMedia(f"{kind}: there is no video stream", file=path.name)
        vs = container.streams.video[0]
        if vs.codec_context.name in _TEXT_ART_CODECS:
            raise UnsupportedMedia(f"text or unknown bytes ({fmt} demuxer), not a video",
                                   file=path.name)
        audio = container.streams.audio[0] if container.streams.audio else None
        claimed = 0.0
        if vs.duration is not None and vs.time_base is not None:
            claimed = float(vs.duration * vs.time_base)
        if claimed <= 0 and container.duration is not None:
            claimed = container.duration / 1_000_000
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        fps = float(rate) if rate else 0.0
        rotation, ok = 0, True
        try:
            frame = next(container.decode(vs), None)
            if frame is None:
                raise VideoFileCorrupted("the video stream holds no frames", file=path.name)
            rotation = _rotation(frame)
        except av.error.FFmpegError:
            ok = False
        return ProbeResult(
            container=fmt,
            claimed_duration_s=claimed,
            fps=fps,
            width=vs.codec_context.width,
            height=vs.codec_context.height,
            rotation=rotation,
            video_codec=vs.codec_context.name,
            has_audio=audio is not None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            first_frame_ok=ok,
        )


def check_truncation(head: ProbeResult, scan: PacketScan, name: str) -> None:
    """Refuse a video whose packets stop well before the duration its container claims.

    A file cut after a front ``moov`` decodes part of the video without any error; only the
    packets' end time shows it. Raises :class:`VideoFileCorrupted` (details ``decodable_s``,
    ``claimed_s``).
    """
    claimed = head.claimed_duration_s
    short = claimed - scan.end_s
    # One frame of slack for rounding in the container's own bookkeeping.
    slack = max(0.25, 1.5 / max(scan.average_fps, 1.0), 0.01 * claimed)
    if scan.n_packets == 0 or short > slack:
        raise VideoFileCorrupted(
            f"the video stops at {scan.end_s:.1f} s but the file says it lasts "
            f"{claimed:.1f} s (truncated or damaged)",
            file=name, decodable_s=round(scan.end_s, 3), claimed_s=round(claimed, 3),
        )


def scan_packets(path: Path) -> PacketScan:
    """Demux every video packet of ``path`` (no decoding) and summarise timing and damage."""
    pts: list[int] = []
    ends: list[int] = []
    corrupt = 0
    error: str | None = None
    with open_media(path) as container:
        vs = container.streams.video[0]
        tb = vs.time_base
        if tb is None:
            raise VideoFileCorrupted("the video stream has no time base", file=path.name)
        try:
            for packet in container.demux(vs):
                if packet.pts is None:
                    continue
                pts.append(packet.pts)
                ends.append(packet.pts + (packet.duration or 0))
                corrupt += int(packet.is_corrupt)
        except av.error.FFmpegError as exc:
            error = f"{type(exc).__name__}: {exc.strerror or exc}"
    if not pts:
        return PacketScan(0, 0.0, 0.0, corrupt, error or "no video packets", False, 0.0)
    times = np.sort(np.asarray(pts, dtype=np.int64))
    start = float(times[0] * tb)
    end = float(max(ends) * tb)
    deltas = np.diff(times).astype(np.float64) * float(tb)
    vfr = False
    avg_fps = 0.0
    if len(deltas):
        median = float(np.median(deltas))
        if median > 0:
            off = np.abs(deltas - median) > 0.1 * median
            # A few odd intervals (a dropped frame, the last frame) are not a variable rate.
            vfr = float(off.mean()) > 0.05
        avg_fps = len(times) / max(end - start, 1e-9)
    return PacketScan(len(times), start, end, corrupt, error, vfr, avg_fps)
