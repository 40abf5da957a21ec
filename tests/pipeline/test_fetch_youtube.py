"""YouTube fetching on recorded info dicts and a loopback server: what the API prices from
(``probe_youtube``), the download with its captions (``fetch_youtube``), the too-long refusal
from yt-dlp's info, the download's time limit and the retries of 429/5xx answers."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from yt_dlp import YoutubeDL

from tests.fixtures.youtube import TIMESTAMP, MediaServer, RecordedYoutube, youtube_info
from trendflow.errors import TrendflowError
from trendflow.pipeline.fetch import (
    _caption_language,
    fetch_youtube,
    meta_from_info,
    probe_youtube,
)
from trendflow.pipeline.probe import probe
from trendflow.settings import SegmenterSettings

VID = "rec0rdedVid"
URL = f"https://youtu.be/{VID}?si=share"
MEDIA = ("video.mp4", "audio.m4a", "combined.mp4")


def settings(**extra: Any) -> SegmenterSettings:
    return SegmenterSettings(download_backoff_s=0.0, **extra)


def recorded(server: MediaServer, **info: Any) -> RecordedYoutube:
    return RecordedYoutube({VID: youtube_info(VID, base_url=server.url, **info)})


def processed(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` as yt-dlp hands it on after extraction (formats chosen), without a download."""
    with YoutubeDL({"quiet": True, "format": "bestvideo[height<=?1080]+bestaudio/best"}) as ydl:
        out = ydl.process_ie_result(copy.deepcopy(info), download=False)
    assert isinstance(out, dict)
    return out


def media_requests(server: MediaServer) -> int:
    return sum(server.requests[name] for name in MEDIA)


def test_probe_reads_the_price_facts_and_metadata_without_downloading(
    youtube_server: MediaServer,
) -> None:
    probed = probe_youtube(URL, settings(), extract=recorded(youtube_server, duration=1200))
    assert (probed.video_id, probed.duration_s, probed.width, probed.height) == (
        VID, 1200.0, 1920, 1080)
    meta = probed.meta
    assert meta.title == "Recorded video" and meta.channel == "Recorded Channel"
    assert meta.channel_follower_count == 12_345
    assert (meta.view_count, meta.like_count) == (67_890, 1_234)
    assert meta.published_at == datetime.fromtimestamp(TIMESTAMP, tz=UTC)
    assert media_requests(youtube_server) == 0


def test_probe_reports_the_size_of_the_format_the_download_takes(
    youtube_server: MediaServer,
) -> None:
    # The only video-only stream is 1440p, above the 1080p the download accepts: the download
    # takes the combined 360p format, and that is the size priced.
    extract = recorded(youtube_server, duration=60, width=2560, height=1440)
    probed = probe_youtube(URL, settings(), extract=extract)
    assert (probed.width, probed.height) == (640, 360)


@pytest.mark.parametrize("duration", [None, 0])
def test_a_video_without_a_duration_is_not_priced(
    youtube_server: MediaServer, duration: float | None
) -> None:
    info = youtube_info(VID, base_url=youtube_server.url, duration=60)
    info.update(duration=duration, live_status="is_live")
    with pytest.raises(TrendflowError) as err:
        probe_youtube(URL, settings(), extract=RecordedYoutube({VID: info}))
    assert err.value.code == "download_failed"
    assert err.value.details["reason"] == "no_duration"


def test_too_long_per_yt_dlp_is_refused_before_any_media_is_fetched(
    youtube_server: MediaServer, tmp_path: Path
) -> None:
    extract = recorded(youtube_server, duration=21 * 60)
    with pytest.raises(TrendflowError) as err:
        probe_youtube(URL, settings(), extract=extract)
    assert err.value.code == "video_too_long"
    assert err.value.details["duration_s"] == 21 * 60
    with pytest.raises(TrendflowError) as err:
        fetch_youtube(URL, tmp_path, settings(), extract=extract)
    assert err.value.code == "video_too_long"
    assert media_requests(youtube_server) == 0
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_video_is_unavailable(youtube_server: MediaServer) -> None:
    with pytest.raises(TrendflowError) as err:
        probe_youtube("https://youtu.be/nosuchvideo", settings(), extract=recorded(
            youtube_server, duration=60))
    assert err.value.code == "video_unavailable"


def test_fetch_downloads_merges_and_reads_captions(
    youtube_server: MediaServer, tmp_path: Path
) -> None:
    extract = recorded(youtube_server, duration=8, automatic_captions={"en": "en.vtt"},
                       subtitles={"de": "de.vtt"})
    fetched = fetch_youtube(URL, tmp_path, settings(), extract=extract)
    assert fetched.video_id == VID
    assert fetched.path == tmp_path / "source.mp4"
    assert [p.name for p in tmp_path.iterdir()] == ["source.mp4"]  # the temp dir is gone
    head = probe(fetched.path)  # the DASH video and audio streams, merged by ffmpeg
    assert head.has_audio and head.claimed_duration_s == pytest.approx(8.0, abs=0.2)
    assert youtube_server.requests["video.mp4"] == youtube_server.requests["audio.m4a"] == 1
    assert youtube_server.requests["combined.mp4"] == 0
    # English automatic captions win over German manual ones (the video's language unknown).
    assert fetched.meta.captions_language == "en"
    assert fetched.meta.captions is not None
    assert [c.text for c in fetched.meta.captions] == ["hello creators", "welcome back"]
    assert fetched.meta.duration_s == 8.0 and fetched.meta.category_id == 26


def test_5xx_while_the_media_streams_is_retried(
    youtube_server: MediaServer, tmp_path: Path
) -> None:
    youtube_server.fail("video.mp4", 503, 500)
    fetched = fetch_youtube(URL, tmp_path, settings(), extract=recorded(youtube_server,
                                                                        duration=8))
    assert fetched.path.exists()
    assert youtube_server.requests["video.mp4"] == 3


def test_5xx_past_the_tries_fails_the_download(
    youtube_server: MediaServer, tmp_path: Path
) -> None:
    youtube_server.fail("video.mp4", 503, 503, 503)
    with pytest.raises(TrendflowError) as err:
        fetch_youtube(URL, tmp_path, settings(), extract=recorded(youtube_server, duration=8))
    assert err.value.code == "download_failed"
    assert youtube_server.requests["video.mp4"] == 3
    assert list(tmp_path.iterdir()) == []


def test_429_is_retried_with_backoff(youtube_server: MediaServer, tmp_path: Path) -> None:
    youtube_server.fail("video.mp4", 429, 429)
    fetched = fetch_youtube(URL, tmp_path, settings(), extract=recorded(youtube_server,
                                                                        duration=8))
    assert fetched.path.exists() and youtube_server.requests["video.mp4"] == 3


def test_429_past_the_tries_fails_with_its_reason(
    youtube_server: MediaServer, tmp_path: Path
) -> None:
    youtube_server.fail("video.mp4", 429, 429, 429)
    with pytest.raises(TrendflowError) as err:
        fetch_youtube(URL, tmp_path, settings(), extract=recorded(youtube_server, duration=8))
    assert err.value.code == "download_failed"
    assert err.value.details == {"tries": 3, "reason": "http_429"}
    assert list(tmp_path.iterdir()) == []


def test_a_download_past_its_time_limit_is_stopped_and_retried(
    youtube_server: MediaServer, tmp_path: Path
) -> None:
    youtube_server.slow("video.mp4")  # 1 KiB every 0.2 s: minutes for the clip
    extract = recorded(youtube_server, duration=8)
    with pytest.raises(TrendflowError) as err:
        fetch_youtube(URL, tmp_path, settings(download_tries=2, download_timeout_base_s=0.5,
                                              download_timeout_per_video_s=0.0),
                      extract=extract)
    assert err.value.code == "download_failed"
    assert err.value.details == {"tries": 2, "reason": "timeout"}
    assert youtube_server.requests["video.mp4"] == 2
    assert list(tmp_path.iterdir()) == []


def test_probe_retries_5xx_from_the_metadata_api(youtube_server: MediaServer) -> None:
    youtube_server.put(f"{VID}.json", youtube_info(VID, base_url=youtube_server.url,
                                                   duration=300))
    youtube_server.fail(f"{VID}.json", 500, 502)
    probed = probe_youtube(URL, settings(), extract=RecordedYoutube(api=youtube_server.url))
    assert probed.duration_s == 300.0
    assert youtube_server.requests[f"{VID}.json"] == 3


@pytest.mark.parametrize(("statuses", "reason"), [((503, 503, 503), "http_503"),
                                                  ((429, 429, 429), "http_429")])
def test_probe_gives_up_after_its_tries(
    youtube_server: MediaServer, statuses: tuple[int, ...], reason: str
) -> None:
    youtube_server.put(f"{VID}.json", youtube_info(VID, duration=300))
    youtube_server.fail(f"{VID}.json", *statuses)
    with pytest.raises(TrendflowError) as err:
        probe_youtube(URL, settings(), extract=RecordedYoutube(api=youtube_server.url))
    assert err.value.code == "download_failed"
    assert err.value.details == {"tries": 3, "reason": reason}


def test_probe_of_a_removed_video_is_unavailable_at_once(youtube_server: MediaServer) -> None:
    with pytest.raises(TrendflowError) as err:  # the metadata API answers 404
        probe_youtube(URL, settings(), extract=RecordedYoutube(api=youtube_server.url))
    assert err.value.code == "video_unavailable"
    assert youtube_server.requests[f"{VID}.json"] == 1


def test_meta_from_info_maps_yt_dlp_fields() -> None:
    info = processed(youtube_info(VID, duration=61.5, language="ru"))
    meta = meta_from_info(info, None, None)
    assert meta.duration_s == 61.5 and meta.language == "ru"
    assert meta.tags == ("cooking", "shorts") and meta.comment_count == 42
    assert meta.category_id == 26  # "Howto & Style"
    assert meta.captions is None and meta.captions_language is None

    # Older records: no timestamp (upload_date only), no channel (the uploader), no counts.
    info = processed(youtube_info(VID, duration=10, views=None, likes=None, followers=None))
    del info["timestamp"]
    info.update(channel=None, uploader="Uploader Name", categories=["Not A Category"])
    meta = meta_from_info(info, None, None)
    assert meta.published_at == datetime(2025, 11, 24, tzinfo=UTC)
    assert meta.channel == "Uploader Name"
    assert (meta.view_count, meta.like_count, meta.channel_follower_count) == (None,) * 3
    assert meta.category_id is None


@pytest.mark.parametrize(
    ("language", "manual", "auto", "chosen"),
    [
        ("ru", {"ru": "a", "en": "b"}, {"ru": "c"}, "ru"),  # manual, in the video's language
        ("ru", {"en": "b"}, {"ru": "c"}, "en"),  # manual English before automatic Russian
        (None, {"de": "a"}, {"en": "c"}, "en"),  # automatic English before manual German
        ("ru", {}, {"ru": "c", "en": "d"}, "ru"),  # automatic, in the video's language
        (None, {"fr": "a", "de": "b"}, {}, "de"),  # some manual track (the first by name)
        (None, {}, {"fr": "a"}, None),  # automatic only in another language: none
        (None, {}, {}, None),
    ],
)
def test_caption_language(
    language: str | None, manual: dict[str, str], auto: dict[str, str], chosen: str | None
) -> None:
    info = processed(youtube_info(VID, duration=30, language=language, subtitles=manual,
                                  automatic_captions=auto))
    assert _caption_language(info) == chosen
