"""A YouTube URL is priced from the video's own metadata (recorded yt-dlp info dicts, read
through the real yt-dlp), never from what the client declares."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.api.test_routes import balance, count_runs, profile  # noqa: F401 (fixture)
from tests.fixtures.api import ApiHarness
from tests.fixtures.youtube import RecordedYoutube, youtube_info
from trendflow.api.youtube import YoutubeMetadata
from trendflow.billing.estimate import estimate
from trendflow.billing.pricing import VideoParams
from trendflow.db.repositories import runs as runs_repo
from trendflow.errors import TrendflowError
from trendflow.runs.request import resolve_profile
from trendflow.settings import SegmenterSettings

TWENTY_MIN = "twentyMin01"
URL = f"https://youtu.be/{TWENTY_MIN}"


async def priced(api: ApiHarness, profile_id: str, video: VideoParams) -> Decimal:
    """What the pricing itself says for ``video`` (the number a quote must equal)."""
    async with api.ctx.db.acquire() as conn:
        prof = await resolve_profile(conn, user_id=api["alice"].user.user_id,
                                     profile_id=profile_id)
        return (await estimate(conn, profile=prof.config, video=video, settings=api.ctx.settings,
                               with_eta=False)).total


async def test_the_quote_is_the_real_duration_not_the_declared_one(
    api: ApiHarness, profile: str  # noqa: F811
) -> None:
    api.youtube.add(youtube_info(TWENTY_MIN, duration=20 * 60, width=1280, height=720))
    body = {"youtube_url": URL, "profile_id": profile, "cache_ttl_days": 0}
    est = await api.client.post("/api/estimate", json=body, headers=api["alice"].headers)
    assert est.status_code == 200, est.text
    quote = est.json()
    assert quote["video"] == {"duration_s": 1200.0, "width": 1280, "height": 720}
    twenty = await priced(api, profile, VideoParams(duration_s=1200, width=1280, height=720))
    ten = await priced(api, profile, VideoParams(duration_s=10, width=1280, height=720))
    assert Decimal(quote["total"]) == twenty > ten

    # Declaring 10 s (or a frame size) is refused, at the estimate and at creation: nothing is
    # created or reserved for a claim.
    before, runs = await balance(api, "alice"), await count_runs(api)
    for declared in ({"duration_s": 10}, {"width": 320, "height": 180},
                     {"duration_s": 10, "width": 320}):
        for path in ("/api/estimate", "/api/runs"):
            r = await api.client.post(path, json={**body, **declared},
                                      headers=api["alice"].headers)
            assert (r.status_code, r.json()["code"]) == (400, "invalid_input"), r.text
            assert all(name in r.json()["message"] for name in declared), r.text
    assert (await balance(api, "alice"), await count_runs(api)) == (before, runs)


async def test_creation_reserves_the_quote_and_keeps_what_it_priced(
    api: ApiHarness, profile: str  # noqa: F811
) -> None:
    api.youtube.add(youtube_info(TWENTY_MIN, duration=20 * 60))
    body = {"youtube_url": URL, "profile_id": profile, "cache_ttl_days": 0}
    est = await api.client.post("/api/estimate", json=body, headers=api["alice"].headers)
    quote = Decimal(est.json()["total"])
    reserved = (await balance(api, "alice"))[1]
    r = await api.client.post("/api/runs", json={**body, "max_total": str(quote)},
                              headers=api["alice"].headers)
    assert r.status_code == 201, r.text
    assert Decimal(r.json()["estimate"]["total"]) == quote
    assert (await balance(api, "alice"))[1] == reserved + quote
    # The estimate's metadata was reused by the creation that followed it: YouTube asked once.
    assert api.youtube.calls[TWENTY_MIN] == 1
    async with api.ctx.db.acquire() as conn:
        run = await runs_repo.get_run(conn, run_id=r.json()["run_id"])
    # What the run checks its fetched video against (trendflow/runs/priced.py).
    assert run.priced_video == {"duration_s": 1200.0, "width": 1920, "height": 1080}
    assert run.source == {"kind": "youtube", "url": f"https://www.youtube.com/watch?v={TWENTY_MIN}"}


async def test_a_video_over_the_limit_per_its_metadata_is_refused(
    api: ApiHarness, profile: str  # noqa: F811
) -> None:
    api.youtube.add(youtube_info(TWENTY_MIN, duration=20 * 60 + 1))
    before = await balance(api, "alice")
    for path in ("/api/estimate", "/api/runs"):
        r = await api.client.post(path, json={"youtube_url": URL, "profile_id": profile},
                                  headers=api["alice"].headers)
        assert (r.status_code, r.json()["code"]) == (422, "video_too_long"), r.text
    assert await balance(api, "alice") == before


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_metadata_is_kept_briefly_per_video_and_failures_are_not() -> None:
    recorded = RecordedYoutube({TWENTY_MIN: youtube_info(TWENTY_MIN, duration=60)})
    clock = Clock()
    youtube = YoutubeMetadata(SegmenterSettings(download_backoff_s=0), cache_s=300,
                              extract=recorded, clock=clock)
    assert (await youtube.probe(TWENTY_MIN)).duration_s == 60
    clock.now += 299
    assert (await youtube.probe(TWENTY_MIN)).duration_s == 60
    assert recorded.calls[TWENTY_MIN] == 1
    clock.now += 2  # past 300 s: asked again, and the new answer is what counts
    recorded.add(youtube_info(TWENTY_MIN, duration=90))
    assert (await youtube.probe(TWENTY_MIN)).duration_s == 90
    assert recorded.calls[TWENTY_MIN] == 2

    for _ in range(2):  # an unavailable video is asked about every time
        with pytest.raises(TrendflowError) as err:
            await youtube.probe("nosuchvideo")
        assert err.value.code == "video_unavailable"
    assert recorded.calls["nosuchvideo"] == 2

    uncached = YoutubeMetadata(SegmenterSettings(), cache_s=0, extract=recorded, clock=clock)
    await uncached.probe(TWENTY_MIN)
    await uncached.probe(TWENTY_MIN)
    assert recorded.calls[TWENTY_MIN] == 4
