"""``metadata_features``: statistics of the title, description and tags, and the probed format.

Only counts and ratios are stored — never the text itself (DESIGN.md §9: no raw titles in
artifacts or logs). Time-of-publication features use the source's UTC ``published_at``; when the
source does not say (most uploads), ``publish_weekday`` and ``publish_hour`` hold
:data:`UNKNOWN` (-1) and ``publish_known`` is false.

The forecast also reads the YouTube category (``category_id``; yt-dlp gives its name, mapped with
:data:`YOUTUBE_CATEGORIES`), the language (``language_index`` into :data:`LANGUAGES`) and the
channel size (``channel_follower_count``, what yt-dlp reports or the uploader types); each is
:data:`UNKNOWN` when the source does not say. A metadata-only run — labelled videos without a
file, see :func:`metadata_only_video` — has ``video_probed`` false and NaN / -1 for the format.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC
from typing import Any, ClassVar

import numpy as np

from trendflow.contracts.arrays import ArraySpec
from trendflow.pipeline.components.base import (
    Component,
    ComponentResult,
    Input,
    Resources,
)
from trendflow.pipeline.types import VideoInfo, VideoMeta

UNKNOWN = -1
"""Sentinel of the integer keys (publish time, category, language, channel size) when unknown."""

YOUTUBE_CATEGORIES: dict[str, int] = {
    "Film & Animation": 1, "Autos & Vehicles": 2, "Music": 10, "Pets & Animals": 15,
    "Sports": 17, "Short Movies": 18, "Travel & Events": 19, "Gaming": 20, "Videoblogging": 21,
    "People & Blogs": 22, "Comedy": 23, "Entertainment": 24, "News & Politics": 25,
    "Howto & Style": 26, "Education": 27, "Science & Technology": 28,
    "Nonprofits & Activism": 29, "Movies": 30, "Shows": 43, "Trailers": 44,
}
"""YouTube's category names (as yt-dlp reports them) → their numeric ids."""

LANGUAGES: tuple[str, ...] = (
    "en", "ru", "es", "pt", "hi", "de", "fr", "ja", "ko", "ar", "id", "tr", "it", "vi", "zh",
    "pl", "uk", "th", "nl",
)
"""``language_index`` i means ``LANGUAGES[i]``; ``len(LANGUAGES)`` is any other language."""


def language_index(language: str | None) -> int:
    """Index of a BCP-47 language's primary subtag in :data:`LANGUAGES` (-1 unknown)."""
    if not language:
        return UNKNOWN
    primary = language.split("-")[0].lower()
    return LANGUAGES.index(primary) if primary in LANGUAGES else len(LANGUAGES)


def metadata_only_video(meta: VideoMeta) -> VideoInfo:
    """The :class:`VideoInfo` of a metadata-only run (no file): nothing probed, 0×0."""
    return VideoInfo(
        duration_s=float(meta.duration_s) if meta.duration_s is not None else math.nan,
        fps=math.nan, width=0, height=0, has_audio=False, video_codec="", audio_codec=None,
        container="", source="youtube",
    )

_LINK = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HASHTAG = re.compile(r"(?<!\w)#\w+")
_WORD = re.compile(r"\w+(?:['’-]\w+)*")
_DIGIT = re.compile(r"\d")
# Emoji = pictographic code points (Unicode blocks of emoji presentation); each regional
# indicator letter of a flag counts once, skin-tone modifiers and joiners are not counted.
_EMOJI = re.compile(
    "[\U0001f300-\U0001f5ff\U0001f600-\U0001f64f\U0001f680-\U0001f6ff\U0001f900-\U0001f9ff"
    "\U0001fa70-\U0001faff\U0001f1e6-\U0001f1ff\u2600-\u26ff\u2700-\u27bf\u2b50\u2b55"
    "\u231a\u231b\u23e9-\u23f3\u23f8-\u23fa]"
)

_TEXT_FIELDS = ("title", "description", "tags")
_TEXT_STATS: dict[str, tuple[str, str, str | None]] = {
    # suffix: (dtype, description, unit)
    "chars": ("int64", "Length in Unicode code points.", "characters"),
    "words": ("int64", "Word count (runs of letters/digits, inner ' or - kept).", "words"),
    "caps_ratio": ("float64", "Upper-case letters / all cased letters (0 when none).", "ratio"),
    "digits": ("int64", "Count of decimal digits.", "characters"),
    "emoji": ("int64", "Count of emoji code points.", "characters"),
    "hashtags": ("int64", "Count of #hashtags.", "count"),
    "links": ("int64", "Count of URLs (http://, https://, www.).", "count"),
    "questions": ("int64", "Count of '?' characters.", "count"),
    "exclamations": ("int64", "Count of '!' characters.", "count"),
}


def text_stats(text: str) -> dict[str, float | int]:
    """The per-text statistics stored for the title, the description and the joined tags."""
    letters = [c for c in text if c.isalpha() and (c.isupper() or c.islower())]
    upper = sum(1 for c in letters if c.isupper())
    return {
        "chars": len(text),
        "words": len(_WORD.findall(text)),
        "caps_ratio": upper / len(letters) if letters else 0.0,
        "digits": len(_DIGIT.findall(text)),
        "emoji": len(_EMOJI.findall(text)),
        "hashtags": len(_HASHTAG.findall(text)),
        "links": len(_LINK.findall(text)),
        "questions": text.count("?"),
        "exclamations": text.count("!"),
    }


class MetadataFeatures(Component):
    """Counts and ratios of the metadata text plus duration, resolution, aspect, fps, publish time.

    ``RESOURCES`` were measured by ``benchmarks/bench_components.py`` (one core; peak RSS growth
    ~0 MB, recorded as the 64 MB floor the benchmark applies to every component).
    """

    NAME: ClassVar[str] = "metadata_features"
    SCHEMA_VERSION: ClassVar[int] = 2
    PRODUCER_VERSION: ClassVar[str] = "2.0.0"
    RESOURCES: ClassVar[Resources] = Resources(cpus=1.0, memory_mb=64)
    TIER: ClassVar[int] = 0
    INPUTS: ClassVar[frozenset[Input]] = frozenset({Input.METADATA})
    DESCRIPTION: ClassVar[str] = (
        "Title/description/tags statistics, duration, resolution, aspect, fps, publish time, "
        "category, language, channel size."
    )

    @classmethod
    def outputs(cls) -> dict[str, ArraySpec]:
        specs: dict[str, ArraySpec] = {}
        for field in _TEXT_FIELDS:
            what = "the tags joined by spaces" if field == "tags" else f"the {field}"
            for suffix, (dtype, desc, unit) in _TEXT_STATS.items():
                specs[f"{field}_{suffix}"] = ArraySpec(dtype, (), f"{desc[:-1]} of {what}.", unit)
        specs |= {
            "tags_count": ArraySpec("int64", (), "Number of tags.", "count"),
            "tags_mean_chars": ArraySpec(
                "float64", (), "Mean tag length (0 when there are no tags).", "characters"
            ),
            "duration_s": ArraySpec("float64", (), "Probed duration of the video.", "s"),
            "width": ArraySpec("int64", (), "Analysed display width.", "px"),
            "height": ArraySpec("int64", (), "Analysed display height.", "px"),
            "aspect_ratio": ArraySpec("float64", (), "width / height.", "ratio"),
            "is_vertical": ArraySpec("bool", (), "height > width (Shorts-style).", None),
            "fps": ArraySpec("float64", (), "Average source frame rate.", "frames/s"),
            "has_audio": ArraySpec("bool", (), "The video has an audio stream.", None),
            "publish_known": ArraySpec("bool", (), "The source gave a publication time.", None),
            "publish_weekday": ArraySpec(
                "int64", (), "UTC weekday of publication, Monday=0 … Sunday=6; -1 if unknown.",
                "day",
            ),
            "publish_hour": ArraySpec(
                "int64", (), "UTC hour of publication, 0–23; -1 if unknown.", "hour"
            ),
            "video_probed": ArraySpec(
                "bool", (), "A file was probed (false: metadata-only; format keys NaN / -1).",
                None,
            ),
            "category_id": ArraySpec(
                "int64", (), "YouTube category id (22 = People & Blogs, …); -1 if unknown.", None
            ),
            "language_index": ArraySpec(
                "int64", (),
                "Index of the language in " + ", ".join(LANGUAGES) + f"; {len(LANGUAGES)} = "
                "another language; -1 if unknown.", None,
            ),
            "channel_follower_count": ArraySpec(
                "int64", (), "Subscribers of the channel; -1 if unknown.", "count"
            ),
        }
        return specs

    def reduce(self, partials: Sequence[Any]) -> ComponentResult:
        ctx = self.context
        meta, video = ctx.meta, ctx.video
        arrays: dict[str, np.ndarray] = {}
        texts = {"title": meta.title, "description": meta.description, "tags": " ".join(meta.tags)}
        for field, text in texts.items():
            for suffix, value in text_stats(text).items():
                dtype = _TEXT_STATS[suffix][0]
                arrays[f"{field}_{suffix}"] = np.array(value, dtype=dtype)
        tag_lengths = [len(t) for t in meta.tags]
        published = meta.published_at
        if published is not None and published.tzinfo is not None:
            published = published.astimezone(UTC)  # naive datetimes are UTC by contract
        probed = video.width > 0 and video.height > 0
        arrays |= {
            "tags_count": np.array(len(meta.tags), dtype=np.int64),
            "tags_mean_chars": np.array(
                float(np.mean(tag_lengths)) if tag_lengths else 0.0, dtype=np.float64
            ),
            "duration_s": np.array(video.duration_s, dtype=np.float64),
            "width": np.array(video.width if probed else UNKNOWN, dtype=np.int64),
            "height": np.array(video.height if probed else UNKNOWN, dtype=np.int64),
            "aspect_ratio": np.array(
                video.width / video.height if probed else math.nan, dtype=np.float64
            ),
            "is_vertical": np.array(video.height > video.width),
            "fps": np.array(video.fps, dtype=np.float64),
            "has_audio": np.array(bool(video.has_audio)),
            "publish_known": np.array(published is not None),
            "publish_weekday": np.array(
                published.weekday() if published else UNKNOWN, dtype=np.int64
            ),
            "publish_hour": np.array(published.hour if published else UNKNOWN, dtype=np.int64),
            "video_probed": np.array(probed),
            "category_id": np.array(
                meta.category_id if meta.category_id is not None else UNKNOWN, dtype=np.int64
            ),
            "language_index": np.array(language_index(meta.language), dtype=np.int64),
            "channel_follower_count": np.array(
                meta.channel_follower_count if meta.channel_follower_count is not None
                else UNKNOWN, dtype=np.int64,
            ),
        }
        return ComponentResult(arrays)
