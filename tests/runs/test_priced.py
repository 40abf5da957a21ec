"""The check of a fetched video against what its run was priced for (pure)."""

from __future__ import annotations

import pytest

from trendflow.billing.pricing import VideoParams
from trendflow.errors import TrendflowError
from trendflow.pipeline.types import VideoInfo
from trendflow.runs.priced import DURATION_TOLERANCE_S, check_priced, priced_json

PRICED = priced_json(VideoParams(duration_s=600.0, width=1280, height=720))


def info(duration_s: float, width: int, height: int) -> VideoInfo:
    return VideoInfo(duration_s=duration_s, fps=30.0, width=width, height=height,
                     has_audio=True, video_codec="h264", audio_codec="aac", container="mp4",
                     source="youtube")


@pytest.mark.parametrize("fetched", [
    info(600.0, 1280, 720),
    info(600.0 + DURATION_TOLERANCE_S, 1280, 720),  # YouTube's whole seconds
    info(590.0, 640, 360),  # shorter and smaller: priced higher than needed, still analysed
    info(600.0, 720, 1280),  # the same frame on its side (the short side is what is priced)
])
def test_a_video_within_its_quote_passes(fetched: VideoInfo) -> None:
    check_priced(PRICED, fetched)


@pytest.mark.parametrize(("fetched", "what"), [
    (info(600.0 + DURATION_TOLERANCE_S + 0.1, 1280, 720), "lasts"),
    (info(1200.0, 1280, 720), "lasts"),
    (info(600.0, 1920, 1080), "is 1920x1080"),
])
def test_a_video_beyond_its_quote_is_refused(fetched: VideoInfo, what: str) -> None:
    with pytest.raises(TrendflowError) as err:
        check_priced(PRICED, fetched)
    assert (err.value.code, err.value.status) == ("video_exceeds_quote", 409)
    assert what in err.value.message
    assert err.value.details["priced"] == {"duration_s": 600.0, "short_side": 720}


def test_an_unbilled_run_is_not_checked() -> None:
    check_priced(None, info(1200.0, 3840, 2160))
