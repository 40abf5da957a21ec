"""What a paid run was priced for, and the check once its video is known.

A run's price is reserved at creation from the video's facts (:class:`VideoParams`): what
YouTube's metadata says (read by the API, :mod:`trendflow.api.youtube`) or what the probe of an
upload found. Those facts are stored with the run (``runs.priced_video``). Once the run has
fetched and probed the video, :func:`check_priced` compares the file with them, and a video that
is longer than priced (beyond :data:`DURATION_TOLERANCE_S`) or whose frame's short side — what
the resolution factor prices — is larger is refused with ``video_exceeds_quote``: the run ends
``error``, which charges nothing and releases every credit it reserved
(:func:`trendflow.billing.ledger.settle_run`). It is never analysed for the lower price, and
never charged more than its quote.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trendflow.billing.pricing import VideoParams
from trendflow.errors import VideoExceedsQuote
from trendflow.pipeline.types import VideoInfo

# YouTube reports whole seconds, and a downloaded file (video and audio merged) runs up to a
# second past that; a longer gap is a different video from the one priced.
DURATION_TOLERANCE_S = 1.5


def priced_json(video: VideoParams) -> dict[str, Any]:
    """The ``runs.priced_video`` JSON of the facts a run is priced for."""
    return {"duration_s": video.duration_s, "width": video.width, "height": video.height}


def check_priced(priced: Mapping[str, Any] | None, info: VideoInfo) -> None:
    """Refuse (``video_exceeds_quote``) a fetched video beyond what its run was priced for.

    ``priced`` is the run's ``priced_video`` (None: an unbilled run, nothing to check);
    ``info`` the prepared video's facts (after any downscale, which only shrinks it).
    """
    if priced is None:
        return
    quoted = VideoParams(duration_s=float(priced["duration_s"]), width=int(priced["width"]),
                         height=int(priced["height"]))
    short_side = min(info.width, info.height)
    longer = info.duration_s > quoted.duration_s + DURATION_TOLERANCE_S
    larger = short_side > quoted.short_side
    if longer or larger:
        what = []
        if longer:
            what.append(f"lasts {info.duration_s:.1f} s, priced for {quoted.duration_s:g} s")
        if larger:
            what.append(f"is {info.width}x{info.height}, priced for "
                        f"{quoted.width}x{quoted.height}")
        raise VideoExceedsQuote(
            f"the fetched video {' and '.join(what)}; it was not analysed and nothing is "
            "charged: ask for a new estimate",
            priced={"duration_s": quoted.duration_s, "short_side": quoted.short_side},
            actual={"duration_s": round(info.duration_s, 3), "short_side": short_side},
            tolerance_s=DURATION_TOLERANCE_S,
        )


__all__ = ["DURATION_TOLERANCE_S", "check_priced", "priced_json"]
