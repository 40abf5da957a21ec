"""Downloading videos with the yt-dlp Python API.

Only two kinds of URL are ever fetched: YouTube video URLs (checked by
:func:`trendflow.contracts.identity.parse_youtube_video_id`) and, when
``segmenter.allow_loopback_urls`` is on, direct ``http://127.0.0.1…`` file URLs (tests, demos).

Downloads go to a fresh temporary directory that is removed whatever happens; the finished file
is moved next to it. Network errors (connection refused or reset, timeouts, HTTP 429 and 5xx)
are retried ``download_tries`` times with exponential backoff (:func:`_ydl_options` says which
layer retries what); everything else fails at once. The whole download is limited to
``download_timeout_base_s + download_timeout_per_video_s × duration``.

:func:`probe_youtube` reads a YouTube video's metadata without downloading it (the API prices a
run from it): the same yt-dlp options, format choice, retries, error classification and
too-long check as the download, in one place.

The extraction step — yt-dlp turning a URL into its info dict, the only network call before the
media itself — is an :data:`Extract` argument (default :func:`extract_info`), so tests give
yt-dlp a recorded info dict whose URLs point at a loopback server and everything after it runs
as in production.
"""

from __future__ import annotations

import logging
import re
import shutil
import socket
import tempfile
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from trendflow.contracts.identity import parse_youtube_video_id, youtube_watch_url
from trendflow.errors import (
    DependencyMissing,
    DownloadFailed,
    InvalidVideoUrl,
    VideoTooLong,
    VideoUnavailable,
)
from trendflow.pipeline.components.metadata_features import YOUTUBE_CATEGORIES
from trendflow.pipeline.types import CaptionSegment, VideoMeta
from trendflow.settings import SegmenterSettings

if TYPE_CHECKING:
    from yt_dlp import YoutubeDL

log = logging.getLogger(__name__)
T = TypeVar("T")

# yt-dlp's extraction step: (the configured YoutubeDL, URL) → the processed info dict of one
# video, formats chosen (what ``YoutubeDL.extract_info(url, download=False)`` returns).
Extract = Callable[["YoutubeDL", str], dict[str, Any]]


def extract_info(ydl: YoutubeDL, url: str) -> dict[str, Any]:
    """The production :data:`Extract`: yt-dlp's extractor for ``url`` (network)."""
    info = ydl.extract_info(url, download=False)
    if not isinstance(info, dict):
        raise DownloadFailed("yt-dlp returned no information for the video")
    return info

YOUTUBE_FORMAT = "bestvideo[height<=?1080]+bestaudio/best"
DIRECT_FORMAT = "best"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1"})


@dataclass(frozen=True)
class Fetched:
    """A downloaded file and what the source said about it."""

    path: Path
    meta: VideoMeta
    video_id: str | None = None


@dataclass(frozen=True)
class ProbedVideo:
    """What YouTube says about a video before it is downloaded: the facts a price needs (of
    the format the download would choose) and its metadata (no captions)."""

    video_id: str
    duration_s: float
    width: int
    height: int
    meta: VideoMeta


class _Timeout(Exception):
    """Raised from the progress hook when the download runs past its limit."""


class _Quiet:
    """yt-dlp logger that keeps titles and URLs out of our logs (lengths and codes only)."""

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        log.debug("yt-dlp warning (%d chars)", len(msg))

    def error(self, msg: str) -> None:
        log.debug("yt-dlp error (%d chars)", len(msg))


def check_direct_url(url: str, settings: SegmenterSettings) -> str:
    """The URL itself if it is an allowed loopback ``http`` URL, else InvalidVideoUrl."""
    if not settings.allow_loopback_urls:
        raise InvalidVideoUrl(
            "direct URLs are disabled; only YouTube video URLs are accepted", url_length=len(url)
        )
    parts = urlsplit(url.strip())
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK_HOSTS or parts.username:
        raise InvalidVideoUrl(
            "only http://127.0.0.1 URLs may be fetched directly", url_length=len(url)
        )
    return url.strip()


def _canonical_youtube(url: str) -> tuple[str, str]:
    video_id = parse_youtube_video_id(url)
    return video_id, youtube_watch_url(video_id)


def fetch_youtube(
    url: str, dest_dir: Path, settings: SegmenterSettings, *, extract: Extract = extract_info
) -> Fetched:
    """Download a YouTube video (≤ 1080p) with its metadata and captions into ``dest_dir``."""
    video_id, canonical = _canonical_youtube(url)
    if shutil.which("ffmpeg") is None:
        raise DependencyMissing(
            "YouTube downloads merge separate video and audio streams with the ffmpeg program "
            "(Debian package 'ffmpeg')",
            dependency="ffmpeg",
        )
    fetched = _retrying(
        lambda: _download_once(canonical, dest_dir, settings, YOUTUBE_FORMAT, captions=True,
                               extract=extract),
        settings, what="download",
    )
    return Fetched(fetched.path, fetched.meta, video_id)


def fetch_direct_url(url: str, dest_dir: Path, settings: SegmenterSettings) -> Fetched:
    """Download a direct loopback file URL through yt-dlp's generic extractor."""
    checked = check_direct_url(url, settings)
    return _retrying(
        lambda: _download_once(checked, dest_dir, settings, DIRECT_FORMAT, captions=False,
                               extract=extract_info),
        settings, what="download",
    )


def probe_youtube(
    url: str, settings: SegmenterSettings, *, extract: Extract = extract_info
) -> ProbedVideo:
    """A YouTube video's duration, frame size and metadata, read without downloading it.

    Blocking (network): call it in a thread from async code. The frame size is that of the
    format the download chooses (:data:`YOUTUBE_FORMAT`). Errors as the download's:
    ``video_unavailable``, ``download_failed`` (after ``download_tries`` tries for network
    trouble; also when YouTube reports no duration or frame size, as for a live stream),
    ``video_too_long``.
    """
    video_id, canonical = _canonical_youtube(url)
    info = _retrying(lambda: _probe_once(canonical, settings, extract), settings, what="probe")
    duration = _reported_duration(info)
    width, height = info.get("width"), info.get("height")
    if duration is None:
        raise DownloadFailed("YouTube reports no duration for this video (a live stream?)",
                             reason="no_duration")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise DownloadFailed("YouTube reports no frame size for the chosen format",
                             reason="no_frame_size")
    return ProbedVideo(video_id=video_id, duration_s=duration, width=width, height=height,
                       meta=meta_from_info(info, None, None))


def _retrying(attempt_once: Callable[[], T], settings: SegmenterSettings, *, what: str) -> T:
    """``attempt_once()``, again after network trouble (:class:`_Retryable`) with exponential
    backoff, at most ``download_tries`` times; then ``download_failed``."""
    last: _Retryable | None = None
    for attempt in range(1, settings.download_tries + 1):
        try:
            return attempt_once()
        except _Retryable as exc:
            last = exc
            log.warning("%s attempt %d/%d failed: %s", what, attempt, settings.download_tries,
                        exc.kind)
            if attempt < settings.download_tries:
                time.sleep(settings.download_backoff_s * 2 ** (attempt - 1))
    assert last is not None
    raise DownloadFailed(
        f"the {what} failed after {settings.download_tries} tries ({last.kind})",
        tries=settings.download_tries, reason=last.kind,
    ) from last


class _Retryable(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def _ydl_options(settings: SegmenterSettings, fmt: str) -> dict[str, Any]:
    """The yt-dlp options every call shares: quiet, the socket timeout, no cache, and the one
    retry rule (``download_tries``, ``download_backoff_s`` doubling).

    Network trouble while the media itself streams (HTTP 5xx, a reset or timed-out read) is
    retried by yt-dlp's downloader, which resumes the partial file: yt-dlp reports giving up
    without the error it gave up on, so only it can tell those apart. Everything before or
    around it — extraction, a 429 on the media, our time limit — is retried by
    :func:`_retrying`, so no failure is retried by both.
    """
    again = settings.download_tries - 1

    def backoff(n: int) -> float:
        return settings.download_backoff_s * 2 ** n

    return {
        "format": fmt,
        "noplaylist": True,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _Quiet(),
        "retries": again,
        "fragment_retries": again,
        "retry_sleep_functions": {"http": backoff, "fragment": backoff},
        "extractor_retries": 0,
        "socket_timeout": settings.socket_timeout_s,
        "cachedir": False,
    }


def _reported_duration(info: dict[str, Any]) -> float | None:
    duration = info.get("duration")
    return float(duration) if isinstance(duration, int | float) and duration > 0 else None


def check_reported_duration(info: dict[str, Any], settings: SegmenterSettings) -> None:
    """Refuse (``video_too_long``) a video whose reported duration is over the limit, before
    anything is downloaded."""
    duration = _reported_duration(info)
    if duration is not None and duration > settings.max_duration_s:
        raise VideoTooLong(
            f"the video is too long ({duration / 60:.1f} min; maximum "
            f"{settings.max_duration_s / 60:g} min)",
            duration_s=duration, max_duration_s=settings.max_duration_s,
        )


def _probe_once(url: str, settings: SegmenterSettings, extract: Extract) -> dict[str, Any]:
    from yt_dlp import YoutubeDL

    with YoutubeDL({**_ydl_options(settings, YOUTUBE_FORMAT), "skip_download": True}) as ydl:
        try:
            info = extract(ydl, url)
            check_reported_duration(info, settings)
        except Exception as exc:  # yt-dlp wraps everything in DownloadError
            _classify(exc)
            raise
    return info


def _download_once(
    url: str, dest_dir: Path, settings: SegmenterSettings, fmt: str, *, captions: bool,
    extract: Extract,
) -> Fetched:
    from yt_dlp import YoutubeDL

    tmp = Path(tempfile.mkdtemp(prefix="download-", dir=dest_dir))
    started = time.monotonic()
    limit = {"s": settings.download_timeout_base_s}

    def hook(status: dict[str, Any]) -> None:
        if time.monotonic() - started > limit["s"]:
            raise _Timeout(f"over {limit['s']:.0f} s")

    opts: dict[str, Any] = {
        **_ydl_options(settings, fmt),
        "outtmpl": str(tmp / "source.%(ext)s"),
        "paths": {"home": str(tmp), "temp": str(tmp)},
        "progress_hooks": [hook],
        "merge_output_format": "mp4",
        "overwrites": True,
    }
    try:
        with YoutubeDL(opts) as ydl:
            try:
                info = extract(ydl, url)
                check_reported_duration(info, settings)
                duration = _reported_duration(info)
                if duration is not None:
                    limit["s"] += settings.download_timeout_per_video_s * duration
                lang = _caption_language(info) if captions else None
                if lang is not None:
                    manual = lang in (info.get("subtitles") or {})
                    ydl.params.update({
                        "writesubtitles": manual,
                        "writeautomaticsub": not manual,
                        "subtitleslangs": [lang],
                        "subtitlesformat": "vtt",
                    })
                info = ydl.process_ie_result(info, download=True)
            except Exception as exc:  # yt-dlp wraps everything in DownloadError
                _classify(exc)
                raise
        files = [p for p in tmp.iterdir() if p.suffix != ".vtt" and p.is_file()]
        media = [p for p in files if not p.name.endswith((".part", ".ytdl"))]
        if len(media) != 1:
            raise DownloadFailed(f"the download produced {len(media)} media files, expected 1")
        final = dest_dir / ("source" + media[0].suffix)
        shutil.move(str(media[0]), final)
        vtt = next(tmp.glob("*.vtt"), None)
        caption_segments = parse_vtt(vtt.read_text(encoding="utf-8")) if vtt else None
        meta = meta_from_info(info, caption_segments, lang if vtt else None)
        return Fetched(final, meta, info.get("id"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    stack: list[BaseException | None] = [exc]
    while stack:
        cur = stack.pop()
        if cur is None or any(cur is s for s in seen):
            continue
        seen.append(cur)
        exc_info = getattr(cur, "exc_info", None)
        if isinstance(exc_info, tuple) and len(exc_info) > 1:
            stack.append(exc_info[1])
        stack.extend([getattr(cur, "cause", None), cur.__cause__, cur.__context__])
    return [c for c in seen if isinstance(c, BaseException)]


def _http_status(exc: BaseException) -> int | None:
    for attr in ("status", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    response = getattr(exc, "response", None)
    status = getattr(response, "status", None)
    return status if isinstance(status, int) else None


def _classify(exc: Exception) -> None:
    """Raise the TrendFlow error for a yt-dlp failure, or _Retryable for network trouble."""
    from yt_dlp.networking.exceptions import HTTPError, TransportError
    from yt_dlp.utils import ExtractorError

    if isinstance(exc, VideoTooLong | DownloadFailed):
        return
    chain = _causes(exc)
    for cause in chain:
        if isinstance(cause, _Timeout):
            raise _Retryable("timeout") from exc
        if isinstance(cause, HTTPError | urllib.error.HTTPError):
            status = _http_status(cause)
            if status in (404, 410, 403, 451):
                raise VideoUnavailable(
                    f"the video is not available (HTTP {status})", http_status=status
                ) from exc
            if status is not None and (status >= 500 or status == 429):
                raise _Retryable(f"http_{status}") from exc
            raise DownloadFailed(f"the server answered HTTP {status}", http_status=status) from exc
    for cause in chain:
        if isinstance(
            cause, TransportError | urllib.error.URLError | ConnectionError | socket.timeout
        ):
            raise _Retryable(type(cause).__name__) from exc
    for cause in chain:
        if isinstance(cause, ExtractorError) and getattr(cause, "expected", False):
            # Private, removed, age- or geo-restricted videos: yt-dlp marks them expected.
            raise VideoUnavailable("the video is not available for download") from exc
    raise DownloadFailed(f"the download failed ({type(exc).__name__})") from exc


def _caption_language(info: dict[str, Any]) -> str | None:
    """Manual subtitles in the video's language, else English, else automatic captions."""
    manual = info.get("subtitles") or {}
    auto = info.get("automatic_captions") or {}
    preferred = [lang for lang in (info.get("language"), "en") if lang]
    for table in (manual, auto):
        for lang in preferred:
            if lang in table:
                return lang
    if manual:
        return sorted(manual)[0]
    return None


def meta_from_info(
    info: dict[str, Any], captions: tuple[CaptionSegment, ...] | None, captions_lang: str | None
) -> VideoMeta:
    """yt-dlp's info dict → :class:`VideoMeta` (absent fields stay ``None``)."""
    published: datetime | None = None
    if isinstance(info.get("timestamp"), int | float):
        published = datetime.fromtimestamp(float(info["timestamp"]), tz=UTC)
    elif isinstance(info.get("upload_date"), str) and re.fullmatch(r"\d{8}", info["upload_date"]):
        published = datetime.strptime(info["upload_date"], "%Y%m%d").replace(tzinfo=UTC)

    def _int(key: str) -> int | None:
        value = info.get(key)
        return int(value) if isinstance(value, int | float) else None

    duration = info.get("duration")
    return VideoMeta(
        title=str(info.get("title") or ""),
        description=str(info.get("description") or ""),
        tags=tuple(str(t) for t in info.get("tags") or ()),
        channel=info.get("channel") or info.get("uploader"),
        published_at=published,
        duration_s=float(duration) if isinstance(duration, int | float) else None,
        view_count=_int("view_count"),
        like_count=_int("like_count"),
        comment_count=_int("comment_count"),
        language=info.get("language"),
        captions=captions,
        captions_language=captions_lang,
        category_id=next(
            (YOUTUBE_CATEGORIES[c] for c in info.get("categories") or ()
             if c in YOUTUBE_CATEGORIES), None,
        ),
        channel_follower_count=_int("channel_follower_count"),
    )


_VTT_TIME = re.compile(
    r"(?:(\d+):)?(\d{2}):(\d{2})[.,](\d{3})\s*-->\s*(?:(\d+):)?(\d{2}):(\d{2})[.,](\d{3})"
)
_VTT_TAG = re.compile(r"<[^>]+>")


def _seconds(h: str | None, m: str, s: str, ms: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_vtt(text: str) -> tuple[CaptionSegment, ...]:
    """WebVTT cues → caption segments (inline tags removed; YouTube's rolling repeats merged)."""
    segments: list[CaptionSegment] = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        lines = block.strip().split("\n")
        for i, line in enumerate(lines):
            m = _VTT_TIME.search(line)
            if not m:
                continue
            start = _seconds(*m.group(1, 2, 3, 4))
            end = _seconds(*m.group(5, 6, 7, 8))
            body = " ".join(_VTT_TAG.sub("", t).strip() for t in lines[i + 1 :]).strip()
            if body and end > start:
                if segments and segments[-1].text == body:
                    prev = segments[-1]
                    segments[-1] = CaptionSegment(prev.start_s, end, body)
                else:
                    segments.append(CaptionSegment(start, end, body))
            break
    return tuple(segments)
