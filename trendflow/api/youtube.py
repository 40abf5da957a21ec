"""A YouTube video's facts for pricing, read by the API from the video's own metadata.

``POST /api/estimate`` and ``POST /api/runs`` price a YouTube URL from what YouTube says about
the video (duration, frame size of the format the run will download, title, channel …), never
from what the client sends. :class:`YoutubeMetadata` reads it with
:func:`trendflow.pipeline.fetch.probe_youtube` — the Segmenter's own yt-dlp options, format
choice, retries and error codes (``video_unavailable``, ``download_failed``,
``video_too_long``) — in a worker thread, so the event loop never blocks on the network.

An answer is kept for ``api.youtube_metadata_cache_s`` (default 300 s) per video id and API
replica, so an estimate and the creation that follows it probe once and price the same facts.
Failures are not kept: the next request asks YouTube again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from trendflow.contracts.identity import youtube_watch_url
from trendflow.pipeline.fetch import Extract, ProbedVideo, extract_info, probe_youtube
from trendflow.settings import SegmenterSettings

# Entries kept at most (the oldest go first): bounds a replica's memory whatever is pasted.
_MAX_ENTRIES = 1024


class YoutubeMetadata:
    """Probes YouTube videos for the API, keeping each answer ``cache_s`` seconds.

    ``extract`` is yt-dlp's extraction step (:data:`~trendflow.pipeline.fetch.Extract`; tests
    hand in recorded info dicts); ``clock`` measures the cache's age.
    """

    def __init__(
        self,
        settings: SegmenterSettings,
        *,
        cache_s: float,
        extract: Extract = extract_info,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._cache_s = cache_s
        self._extract = extract
        self._clock = clock
        self._cache: dict[str, tuple[float, ProbedVideo]] = {}

    async def probe(self, video_id: str) -> ProbedVideo:
        """The video's facts and metadata (from the cache when read in the last ``cache_s``)."""
        now = self._clock()
        hit = self._cache.get(video_id)
        if hit is not None and now - hit[0] < self._cache_s:
            return hit[1]
        probed = await asyncio.to_thread(probe_youtube, youtube_watch_url(video_id),
                                         self._settings, extract=self._extract)
        if self._cache_s > 0:
            self._keep(video_id, probed, now)
        return probed

    def _keep(self, video_id: str, probed: ProbedVideo, now: float) -> None:
        self._cache.pop(video_id, None)
        for key in [k for k, (at, _) in self._cache.items() if now - at >= self._cache_s]:
            del self._cache[key]
        while len(self._cache) >= _MAX_ENTRIES:
            del self._cache[next(iter(self._cache))]
        self._cache[video_id] = (now, probed)


__all__ = ["YoutubeMetadata"]
