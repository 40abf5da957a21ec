"""The Segmenter: from a video source to the chunked analysis timeline and audio.

``prepare`` fetches (YouTube through yt-dlp, an upload from the upload store, or — for tests and
local demos only — a loopback URL), probes, validates before any heavy work, repairs what FFmpeg
can repair and plans the timeline. ``iter_chunks`` decodes the union of the components' frame
indices once, in chunks; ``extract_audio`` gives mono float32 audio at the configured rates.

Errors (all from :mod:`trendflow.errors`): ``invalid_video_url``, ``download_failed``,
``video_unavailable``, ``unsupported_media``, ``video_too_short``, ``video_too_long``,
``video_file_corrupted``. After an error nothing the Segmenter wrote is left in ``workdir``.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trendflow.contracts.identity import SAMPLING_POLICY_VERSION
from trendflow.errors import (
    TrendflowError,
    UnsupportedMedia,
    VideoFileCorrupted,
    VideoTooLong,
    VideoTooShort,
)
from trendflow.pipeline import decode
from trendflow.pipeline.probe import (
    PacketScan,
    ProbeResult,
    check_truncation,
    probe,
    scan_packets,
)
from trendflow.pipeline.types import (
    AudioTrack,
    FrameChunk,
    PreprocessingStep,
    Timeline,
    VideoInfo,
    VideoMeta,
)
from trendflow.settings import SegmenterSettings

log = logging.getLogger(__name__)

_OWN_DIR = "segmenter"  # everything prepare() writes lives in <workdir>/segmenter/


@dataclass(frozen=True)
class YoutubeSource:
    """A YouTube video URL (any form :func:`parse_youtube_video_id` accepts)."""

    url: str


@dataclass(frozen=True)
class UploadSource:
    """A file from the upload store with the metadata the user typed in."""

    path: Path
    meta: VideoMeta
    filename: str | None = None


@dataclass(frozen=True)
class DirectUrlSource:
    """A direct ``http://127.0.0.1…`` file URL; refused unless ``allow_loopback_urls`` is on."""

    url: str


VideoSource = YoutubeSource | UploadSource | DirectUrlSource


@dataclass(frozen=True)
class PreparedVideo:
    """A validated local video ready to decode: its facts, metadata and timeline plan."""

    path: Path
    info: VideoInfo
    meta: VideoMeta
    timeline: Timeline
    workdir: Path

    @property
    def plan(self) -> decode.TimelinePlan:
        clamp = next(
            (s.params.get("to") for s in self.info.preprocessing if s.kind == "downscale"), None
        )
        return decode.TimelinePlan(
            fps=self.timeline.fps,
            width=self.timeline.width,
            height=self.timeline.height,
            n_frames=self.timeline.n_frames,
            rotation=self.info.rotation,
            clamp=tuple(clamp) if clamp is not None else None,  # type: ignore[arg-type]
        )


class Segmenter:
    """Fetch, probe, validate, repair and decode videos (no Ray here; see ``actors/``)."""

    def __init__(self, settings: SegmenterSettings) -> None:
        self.settings = settings

    # -- prepare -------------------------------------------------------------------------------

    def prepare(self, source: VideoSource, workdir: Path) -> PreparedVideo:
        """Bring ``source`` to a local, validated, decodable file and plan its timeline.

        Raises the media errors listed in the module docstring; on any error the files this
        call wrote under ``workdir`` are removed.
        """
        workdir = Path(workdir)
        own = workdir / _OWN_DIR
        created_workdir = not workdir.exists()
        own.mkdir(parents=True, exist_ok=True)
        try:
            path, meta, kind = self._fetch(source, own)
            return self._prepare_file(path, meta, kind, own, workdir)
        except BaseException:
            shutil.rmtree(own, ignore_errors=True)
            if created_workdir:
                shutil.rmtree(workdir, ignore_errors=True)
            raise

    def release(self, prepared: PreparedVideo) -> None:
        """Remove what ``prepare`` wrote (downloads, repaired copies); uploads are not touched."""
        shutil.rmtree(prepared.workdir / _OWN_DIR, ignore_errors=True)

    def _fetch(self, source: VideoSource, own: Path) -> tuple[Path, VideoMeta, str]:
        from trendflow.pipeline import fetch

        match source:
            case UploadSource(path=path, meta=meta):
                return Path(path), meta, "upload"
            case YoutubeSource(url=url):
                fetched = fetch.fetch_youtube(url, own, self.settings)
                return fetched.path, fetched.meta, "youtube"
            case DirectUrlSource(url=url):
                fetched = fetch.fetch_direct_url(url, own, self.settings)
                return fetched.path, fetched.meta, "url"
        raise TypeError(f"not a video source: {type(source).__name__}")

    def _check_duration(self, seconds: float, name: str) -> None:
        s = self.settings
        if seconds < s.min_duration_s:
            raise VideoTooShort(
                f"the video is too short ({seconds:.1f} s; minimum {s.min_duration_s:g} s)",
                duration_s=round(seconds, 3), min_duration_s=s.min_duration_s, file=name,
            )
        if seconds > s.max_duration_s:
            raise VideoTooLong(
                f"the video is too long ({seconds / 60:.1f} min; maximum "
                f"{s.max_duration_s / 60:g} min)",
                duration_s=round(seconds, 3), max_duration_s=s.max_duration_s, file=name,
            )

    def _prepare_file(
        self, path: Path, meta: VideoMeta, kind: str, own: Path, workdir: Path
    ) -> PreparedVideo:
        steps: list[PreprocessingStep] = []
        head = probe(path)
        # Refuse by length before anything heavy (the claim is what the container says).
        self._check_duration(head.claimed_duration_s, path.name)
        scan = scan_packets(path)
        damage = _damage(head, scan)
        if damage is not None:
            path, head, scan = self._repair(path, head, scan, damage, own, steps)
        check_truncation(head, scan, path.name)
        self._check_duration(scan.duration_s, path.name)
        return self._plan(path, meta, kind, head, scan, steps, workdir)

    def _repair(
        self,
        path: Path,
        head: ProbeResult,
        scan: PacketScan,
        reason: str,
        own: Path,
        steps: list[PreprocessingStep],
    ) -> tuple[Path, ProbeResult, PacketScan]:
        """Remux (lossless) when that gives a whole, decodable copy; else re-encode tolerantly."""
        log.info("repairing %s: %s", path.name, reason)
        try:
            return self._remux(path, head, scan, reason, own, steps)
        except TrendflowError as exc:
            remux_failed = exc.message
        log.info("remux of %s did not help (%s); re-encoding", path.name, remux_failed)
        s = self.settings
        dest = own / "repaired.mp4"
        try:
            written, skipped = decode.reencode_tolerant(
                path, dest, crf=s.repair_crf, preset=s.repair_preset
            )
            new_head = probe(dest)
            new_scan = scan_packets(dest)
        except TrendflowError as exc:
            raise VideoFileCorrupted(
                f"the file is damaged and could not be repaired ({exc.message})", file=path.name
            ) from exc
        if _damage(new_head, new_scan) is not None:
            raise VideoFileCorrupted("the repaired copy is still unreadable", file=path.name)
        # The repaired copy must cover what the original claimed, else data is missing.
        check_truncation(head, new_scan, path.name)
        steps.append(
            PreprocessingStep(
                kind="repair_reencode",
                detail=f"error-tolerant decode and re-encode (H.264 CRF {s.repair_crf}): {reason}",
                params={"crf": s.repair_crf, "preset": s.repair_preset,
                        "frames": written, "skipped_packets": skipped,
                        "remux_failed": remux_failed},
            )
        )
        return dest, new_head, new_scan

    def _remux(
        self,
        path: Path,
        head: ProbeResult,
        scan: PacketScan,
        reason: str,
        own: Path,
        steps: list[PreprocessingStep],
    ) -> tuple[Path, ProbeResult, PacketScan]:
        """Stream-copy into a fresh MP4 dropping corrupt packets; raise unless the copy is sound.

        Sound means: no damage the scan sees, as long as the original claimed, and every frame
        decodes (the one full decode, paid only for damaged files, so that the timeline decode
        cannot fail part-way on a copy that was accepted here).
        """
        dest = own / "remuxed.mp4"
        try:
            copied = decode.remux_tolerant(path, dest)
            new_head = probe(dest)
            new_scan = scan_packets(dest)
            if (still := _damage(new_head, new_scan)) is not None:
                raise VideoFileCorrupted(f"the remuxed copy is still damaged: {still}")
            check_truncation(head, new_scan, path.name)
            decode.count_decodable_frames(dest)
        except TrendflowError:
            dest.unlink(missing_ok=True)
            raise
        steps.append(
            PreprocessingStep(
                kind="remux",
                detail="stream copy into a new MP4 without re-encoding, corrupt packets "
                f"dropped and timestamps regenerated: {reason}",
                params={"video_packets": copied,
                        "dropped_packets": max(0, scan.n_packets - new_scan.n_packets)},
            )
        )
        return dest, new_head, new_scan

    def _plan(
        self,
        path: Path,
        meta: VideoMeta,
        kind: str,
        head: ProbeResult,
        scan: PacketScan,
        steps: list[PreprocessingStep],
        workdir: Path,
    ) -> PreparedVideo:
        s = self.settings
        if head.width < 2 or head.height < 2:
            raise UnsupportedMedia("the video has no picture size", file=path.name)
        disp_w, disp_h = decode.display_size(head.width, head.height, head.rotation)
        if head.rotation:
            steps.append(
                PreprocessingStep(
                    kind="rotate",
                    detail=f"rotated {head.rotation}° counter-clockwise to display orientation",
                    params={"degrees": head.rotation, "coded": [head.width, head.height]},
                )
            )
        clamp: tuple[int, int] | None = None
        if min(disp_w, disp_h) > s.max_source_height:
            # Clamp the short side (landscape height, portrait width) to the source limit.
            if disp_h <= disp_w:
                clamp = (decode.even_width(disp_w, disp_h, s.max_source_height),
                         s.max_source_height)
            else:
                clamp = (s.max_source_height,
                         decode.even_width(disp_h, disp_w, s.max_source_height))
            steps.append(
                PreprocessingStep(
                    kind="downscale",
                    detail=f"{disp_w}x{disp_h} -> {clamp[0]}x{clamp[1]} (lanczos), in the decode "
                    "graph: no lossy intermediate file",
                    params={"from": [disp_w, disp_h], "to": list(clamp), "flags": "lanczos"},
                )
            )
            disp_w, disp_h = clamp
        if scan.variable_frame_rate:
            steps.append(
                PreprocessingStep(
                    kind="vfr_normalize",
                    detail=f"variable frame rate resampled by timestamp to {s.analysis_fps:g} fps",
                    params={"average_fps": round(scan.average_fps, 3)},
                )
            )
        n_frames = int(round(scan.duration_s * s.analysis_fps))
        timeline = Timeline(
            fps=s.analysis_fps,
            width=decode.even_width(disp_w, disp_h, s.analysis_height),
            height=s.analysis_height,
            n_frames=n_frames,
            sampling_policy_version=SAMPLING_POLICY_VERSION,
        )
        info = VideoInfo(
            duration_s=scan.duration_s,
            fps=scan.average_fps or head.fps,
            width=disp_w,
            height=disp_h,
            has_audio=head.has_audio,
            video_codec=head.video_codec,
            audio_codec=head.audio_codec,
            container=head.container,
            rotation=head.rotation,
            variable_frame_rate=scan.variable_frame_rate,
            source=kind,  # type: ignore[arg-type]
            preprocessing=tuple(steps),
        )
        return PreparedVideo(path=path, info=info, meta=meta, timeline=timeline, workdir=workdir)

    # -- decode ----------------------------------------------------------------------------------

    def chunk_frames(self, timeline: Timeline) -> int:
        """Timeline frames per chunk (``chunk_seconds`` of timeline, at least one frame)."""
        return max(1, int(round(self.settings.chunk_seconds * timeline.fps)))

    def iter_chunks(self, prepared: PreparedVideo, indices: np.ndarray) -> Iterator[FrameChunk]:
        """Decode only ``indices`` (sorted unique timeline indices, the union) in chunks.

        Chunk ``k`` covers timeline frames ``[k·C, (k+1)·C)`` with ``C = chunk_seconds × fps``;
        chunks holding none of ``indices`` are not emitted. Each chunk carries the last union
        frame before it as ``context_index``/``context_frame``.
        """
        return decode.iter_timeline_chunks(
            prepared.path, prepared.plan, np.asarray(indices, dtype=np.int64),
            self.chunk_frames(prepared.timeline),
        )

    def extract_audio(self, prepared: PreparedVideo) -> AudioTrack:
        """Mono float32 at every ``audio_rates_hz``, or an empty track with ``missing_reason``."""
        if not prepared.info.has_audio:
            return AudioTrack(samples={}, duration_s=0.0, missing_reason="no_audio_stream")
        return decode.extract_audio(
            prepared.path, tuple(self.settings.audio_rates_hz), prepared.info.duration_s
        )


def _damage(head: ProbeResult, scan: PacketScan) -> str | None:
    """Why the file needs repair (demuxing stopped, packets flagged corrupt, no first frame)."""
    if scan.demux_error is not None:
        return scan.demux_error
    if scan.corrupt_packets:
        return f"{scan.corrupt_packets} corrupt packets"
    if not head.first_frame_ok:
        return "first frame does not decode"
    return None
