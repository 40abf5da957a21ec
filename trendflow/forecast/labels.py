"""Labelled videos: the data contract of the forecast, and its loader.

A labels file is a CSV or Parquet table, one row per observation of a video:

=========================  ========  =====================================================
column                     required  meaning
=========================  ========  =====================================================
``video_id``               yes       the YouTube id (11 characters) or an upload id
``views``, ``likes``       yes       the public counts when observed (integers ≥ 0)
``title``, ``tags``        no        tags ``|``-separated (``[none]`` = no tags)
``description``            no
``channel_title``          no        (or ``channel``) groups the evaluation split
``category_id``            no        YouTube category id
``channel_follower_count`` no        subscribers when observed
``language``               no        BCP-47 code
``duration_s``             no
``published_at``           no        ISO 8601 with a time zone
``observed_at``            no        ISO 8601; the label's age = observed − published
``date``                   no        the shared dataset's trending day, ``d.mm`` (2017;
                                     ``1.1`` is 1 October: the spreadsheet lost a zero)
``source_url``/``file``    no        where the video can be fetched (a video-feature model)
=========================  ========  =====================================================

The shared dataset (``youtube-trending-us-2017/USvideos.csv``) is one accepted shape. Rows that
cannot be used are dropped and counted by reason (:class:`LoadReport`): a malformed id (the
spreadsheet's ``#NAME?``), a malformed ``date``, counts that are not numbers, or zero views.
A video observed several times keeps its last observation (latest ``observed_at`` / ``date``,
else the last row).
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from trendflow.errors import ConfigError, InputError
from trendflow.pipeline.types import VideoMeta

SHARED_DATASET = Path("youtube-trending-us-2017") / "USvideos.csv"
"""The shared labelled set, relative to the shared datasets folder."""

_VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{11}|up-[0-9a-f]{16}")
_DDMM = re.compile(r"(\d{1,2})\.(\d{1,2})")
REQUIRED = ("video_id", "views", "likes")


@dataclass(frozen=True, slots=True)
class LabelledVideo:
    """One video with its counts and what its metadata says."""

    video_id: str
    channel: str
    meta: VideoMeta
    views: int
    likes: int
    age_days: float | None  # None: the labels do not say when it was published


@dataclass(slots=True)
class LoadReport:
    """How many rows were read, dropped (by reason) and merged as repeats of one video."""

    rows: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    videos: int = 0
    sha256: str = ""

    def summary(self) -> str:
        drops = ", ".join(f"{n} {why}" for why, n in sorted(self.dropped.items())) or "none"
        return (f"{self.rows} rows, dropped {sum(self.dropped.values())} ({drops}), "
                f"{self.duplicates} repeated observations merged → {self.videos} videos")


def shared_datasets_dir(repo_root: Path | None = None) -> Path:
    """``../shared/datasets`` beside the checkout (where the shared labelled data lives)."""
    root = repo_root or Path(__file__).resolve().parents[2]
    return root.parent / "shared" / "datasets"


def default_labels_path(repo_root: Path | None = None) -> Path:
    """The shared CSV; :class:`ConfigError` naming the expected path when it is absent."""
    path = shared_datasets_dir(repo_root) / SHARED_DATASET
    if not path.is_file():
        raise ConfigError(
            f"the labelled dataset {path} is missing: the default predictor is trained on it "
            "(put the shared datasets folder beside the checkout, or pass --labels)",
            path=str(path),
        )
    return path


def _rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return [{k: v for k, v in row.items()} for row in pq.read_table(path).to_pylist()]
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _text(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    return "" if value is None else str(value)


def _opt_int(row: dict[str, Any], key: str) -> int | None:
    raw = _text(row, key).strip()
    if not raw:
        return None
    return int(float(raw))


def _opt_time(row: dict[str, Any], key: str) -> datetime | None:
    raw = row.get(key)
    if raw is None or raw == "":
        return None
    value = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    if value.tzinfo is None:
        raise ValueError(f"{key} needs a time zone")
    return value


def load_labels(path: Path) -> tuple[list[LabelledVideo], LoadReport]:
    """Read a labels file (see the module docstring); one :class:`LabelledVideo` per video."""
    if not path.is_file():
        raise InputError(f"labels file {path} does not exist", path=str(path))
    rows = _rows(path)
    report = LoadReport(rows=len(rows), sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    if rows:
        absent = [c for c in REQUIRED if c not in rows[0]]
        if absent:
            raise InputError(f"labels file {path} lacks the columns {absent}", missing=absent)
    latest: dict[str, tuple[tuple[Any, ...], LabelledVideo]] = {}
    for order, row in enumerate(rows):
        video_id = _text(row, "video_id").strip()
        if not _VIDEO_ID.fullmatch(video_id):
            report.dropped["malformed video_id"] += 1
            continue
        day: tuple[int, int] | None = None
        if _text(row, "date"):
            match = _DDMM.fullmatch(_text(row, "date").strip())
            if match is None:
                report.dropped["malformed date"] += 1
                continue
            # Written as a number by a spreadsheet: "1.1" is 1 October ("1.10" lost its zero).
            month = 10 if match.group(2) == "1" else int(match.group(2))
            day = (month, int(match.group(1)))
        try:
            views, likes = int(float(_text(row, "views"))), int(float(_text(row, "likes")))
            published = _opt_time(row, "published_at")
            observed = _opt_time(row, "observed_at")
            category = _opt_int(row, "category_id")
            followers = _opt_int(row, "channel_follower_count")
            duration = float(_text(row, "duration_s")) if _text(row, "duration_s") else None
        except ValueError:
            report.dropped["unreadable value"] += 1
            continue
        if views <= 0 or likes < 0:
            report.dropped["zero or negative counts"] += 1
            continue
        tags_raw = _text(row, "tags")
        tags = () if tags_raw in ("", "[none]") else tuple(
            t.strip().strip('"') for t in tags_raw.split("|") if t.strip().strip('"')
        )
        age = None
        if published is not None and observed is not None:
            age = max(0.0, (observed - published).total_seconds() / 86400)
        channel = _text(row, "channel_title") or _text(row, "channel")
        meta = VideoMeta(
            title=_text(row, "title"),
            description=_text(row, "description"),
            tags=tags,
            channel=channel or None,
            published_at=published,
            duration_s=duration,
            language=_text(row, "language") or None,
            category_id=category,
            channel_follower_count=followers,
        )
        video = LabelledVideo(video_id, channel, meta, views, likes, age)
        when = (observed.timestamp() if observed else 0.0, day or (0, 0), order)
        if video_id in latest:
            report.duplicates += 1
            if latest[video_id][0] > when:
                continue
        latest[video_id] = (when, video)
    videos = [v for _, v in latest.values()]
    report.videos = len(videos)
    return videos, report


__all__ = [
    "LabelledVideo",
    "LoadReport",
    "SHARED_DATASET",
    "default_labels_path",
    "load_labels",
    "shared_datasets_dir",
]
