"""Fetching: loopback URLs through yt-dlp's generic extractor, refusals, captions."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.media import MediaLibrary
from trendflow.errors import TrendflowError
from trendflow.pipeline.fetch import parse_vtt
from trendflow.pipeline.segmenter import DirectUrlSource, Segmenter, YoutubeSource
from trendflow.settings import SegmenterSettings


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def media_server(media: MediaLibrary) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving the generated clips."""
    media.clip("scene_cuts")
    media.clip("3s")
    handler = functools.partial(_Quiet, directory=str(media.root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def loopback_segmenter(**extra: object) -> Segmenter:
    return Segmenter(
        SegmenterSettings(allow_loopback_urls=True, download_backoff_s=0.0, **extra)
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_loopback_url_is_downloaded_and_prepared(media_server: str, tmp_path: Path) -> None:
    seg = loopback_segmenter()
    prepared = seg.prepare(DirectUrlSource(f"{media_server}/scene_cuts.mp4"), tmp_path / "w")
    assert prepared.info.source == "url"
    assert prepared.path.parent == tmp_path / "w" / "segmenter"
    assert prepared.timeline.n_frames == 96
    # The per-download temp dir is gone; only the finished file remains.
    assert [p.name for p in prepared.path.parent.iterdir()] == [prepared.path.name]
    seg.release(prepared)
    assert not prepared.path.exists()


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("{server}/missing.mp4", "video_unavailable"),
        ("http://127.0.0.1:{port}/x.mp4", "download_failed"),  # nothing listens there
        ("{server}/3s.mp4", "video_too_short"),
        ("http://example.com/x.mp4", "invalid_video_url"),
        ("https://127.0.0.1/x.mp4", "invalid_video_url"),
    ],
)
def test_bad_urls_get_their_code_and_leave_nothing(
    media_server: str, tmp_path: Path, url: str, code: str
) -> None:
    seg = loopback_segmenter(download_tries=2)
    workdir = tmp_path / "w"
    with pytest.raises(TrendflowError) as err:
        seg.prepare(DirectUrlSource(url.format(server=media_server, port=free_port())), workdir)
    assert err.value.code == code
    assert not workdir.exists()


def test_direct_urls_are_refused_unless_enabled(media_server: str, tmp_path: Path) -> None:
    with pytest.raises(TrendflowError) as err:
        Segmenter(SegmenterSettings()).prepare(
            DirectUrlSource(f"{media_server}/scene_cuts.mp4"), tmp_path / "w"
        )
    assert err.value.code == "invalid_video_url"
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize(
    "url", ["https://vimeo.com/76979871", "https://www.youtube.com/playlist?list=PL123", "file:///etc/passwd"]
)
def test_non_youtube_urls_are_refused_before_any_network(url: str, tmp_path: Path) -> None:
    with pytest.raises(TrendflowError) as err:
        Segmenter(SegmenterSettings()).prepare(YoutubeSource(url), tmp_path / "w")
    assert err.value.code == "invalid_video_url"
    assert not (tmp_path / "w").exists()


def test_vtt_captions_become_segments() -> None:
    vtt = (
        "WEBVTT\nKind: captions\nLanguage: en\n\n"
        "00:00:00.500 --> 00:00:02.000 align:start position:0%\nhello <c>creators</c>\n\n"
        "00:00:02.000 --> 00:00:03.250\nhello creators\n\n"
        "00:01:02.000 --> 00:01:04.000\nwelcome back\n"
    )
    segs = parse_vtt(vtt)
    assert [(s.start_s, s.end_s, s.text) for s in segs] == [
        (0.5, 3.25, "hello creators"),
        (62.0, 64.0, "welcome back"),
    ]
