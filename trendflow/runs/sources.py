"""The ``runs.source`` JSON: where a run's video comes from, as stored in the queue.

Three kinds, mirroring the Segmenter's sources::

    {"kind": "youtube", "url": "https://www.youtube.com/watch?v=…"}
    {"kind": "upload", "key": "upload_content/<sha256>", "meta": {…VideoMeta…}}
    {"kind": "url", "url": "http://127.0.0.1:…/clip.mp4"}      (tests and local demos only)

An upload's file lives in the result store under ``upload_content/`` (once per content hash); the
Segmenter actor copies it into the run's work directory before preparing it, so the same run
works on local disk and S3.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from trendflow.errors import InputError
from trendflow.pipeline.types import CaptionSegment, VideoMeta


def meta_to_json(meta: VideoMeta) -> dict[str, Any]:
    """A :class:`VideoMeta` as plain JSON (datetimes in ISO 8601)."""
    return {
        "title": meta.title,
        "description": meta.description,
        "tags": list(meta.tags),
        "channel": meta.channel,
        "published_at": meta.published_at.isoformat() if meta.published_at else None,
        "duration_s": meta.duration_s,
        "view_count": meta.view_count,
        "like_count": meta.like_count,
        "comment_count": meta.comment_count,
        "language": meta.language,
        "category_id": meta.category_id,
        "channel_follower_count": meta.channel_follower_count,
        "captions": None
        if meta.captions is None
        else [[c.start_s, c.end_s, c.text] for c in meta.captions],
        "captions_language": meta.captions_language,
    }


def meta_from_json(data: Mapping[str, Any]) -> VideoMeta:
    """The inverse of :func:`meta_to_json`; unknown keys are refused."""
    known = set(VideoMeta.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"unknown video metadata fields {unknown}", field="meta")
    values = dict(data)
    if values.get("tags") is not None:
        values["tags"] = tuple(values["tags"])
    if values.get("published_at"):
        values["published_at"] = datetime.fromisoformat(values["published_at"])
    if values.get("captions") is not None:
        values["captions"] = tuple(CaptionSegment(*c) for c in values["captions"])
    return VideoMeta(**values)


def youtube_source(url: str) -> dict[str, Any]:
    return {"kind": "youtube", "url": url}


def upload_source(key: str, meta: VideoMeta) -> dict[str, Any]:
    return {"kind": "upload", "key": key, "meta": meta_to_json(meta)}


def video_title(source: Mapping[str, Any]) -> str | None:
    """The title a source names for its video (the ``videos.title`` it gives): an upload's,
    from the metadata its user typed in; a YouTube or URL source names none."""
    if source.get("kind") != "upload":
        return None
    title = (source.get("meta") or {}).get("title")
    return None if title is None else str(title)


def check_source(data: Mapping[str, Any]) -> str:
    """The source's kind, after checking it has exactly the fields of that kind."""
    kind = data.get("kind")
    expected = {"youtube": {"kind", "url"}, "url": {"kind", "url"},
                "upload": {"kind", "key", "meta"}}.get(str(kind))
    if expected is None:
        raise InputError(f"unknown source kind {kind!r}; expected youtube, upload or url",
                         field="source")
    if set(data) != expected:
        raise InputError(f"a {kind} source has exactly the fields {sorted(expected)}, got "
                         f"{sorted(data)}", field="source")
    return str(kind)


__all__ = [
    "check_source",
    "meta_from_json",
    "meta_to_json",
    "upload_source",
    "video_title",
    "youtube_source",
]
