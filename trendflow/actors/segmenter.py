"""The Segmenter actor: fetches and prepares a run's video, then streams its frame chunks.

Frames never travel by value: :meth:`SegmenterActor.chunks` is a streaming generator, so each
:class:`~trendflow.pipeline.types.FrameChunk` it yields goes straight into the object store and
the scheduler receives an ObjectRef. With ``_generator_backpressure_num_objects`` the actor stops
decoding while the scheduler has not taken the previous chunk, and the scheduler takes a chunk
only while fewer than ``runtime.chunks_in_flight`` are being mapped; a chunk is freed as soon as
the last component mapped it (the scheduler drops its ref and Ray's reference counting frees it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from trendflow.contracts.keys import validate_filename
from trendflow.errors import RunNotFound
from trendflow.pipeline.frames_archive import archive_chunk
from trendflow.pipeline.segmenter import (
    DirectUrlSource,
    PreparedVideo,
    Segmenter,
    UploadSource,
    VideoSource,
    YoutubeSource,
)
from trendflow.pipeline.types import AudioTrack, FrameChunk, Timeline, VideoInfo, VideoMeta
from trendflow.runs.sources import check_source, meta_from_json
from trendflow.settings import Settings
from trendflow.storage.base import ResultStore
from trendflow.storage.factory import open_store

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PreparedSummary:
    """What the scheduler needs of a prepared video (the file itself stays on the actor)."""

    info: VideoInfo
    meta: VideoMeta
    timeline: Timeline
    chunk_frames: int


class SegmenterActor:
    """An actor body (undecorated; see :func:`segmenter_options`). One prepared video per run."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._prepared: dict[str, tuple[Segmenter, PreparedVideo]] = {}
        self._work_root = settings.data_dir / "work"
        self._result_store: ResultStore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _source(self, data: Mapping[str, Any], workdir: Path) -> VideoSource:
        match check_source(data):
            case "youtube":
                return YoutubeSource(url=str(data["url"]))
            case "url":
                return DirectUrlSource(url=str(data["url"]))
            case "upload":
                key = str(data["key"])
                filename = validate_filename(key.rsplit("/", 1)[-1])
                local = workdir / "upload" / filename
                local.parent.mkdir(parents=True, exist_ok=True)
                self._run_async(self._store().get_file(key, local))
                return UploadSource(path=local, meta=meta_from_json(data["meta"]),
                                    filename=filename)
        raise AssertionError(data)

    def prepare(
        self, run_id: str, source: Mapping[str, Any], fps: float, height: int
    ) -> PreparedSummary:
        """Fetch, probe, validate and repair on the profile's timeline (``fps``, ``height``).

        Raises the Segmenter's media errors.
        """
        self.release(run_id)
        workdir = self._work_root / run_id
        segmenter = Segmenter(
            self._settings.segmenter.model_copy(
                update={"analysis_fps": fps, "analysis_height": height}
            )
        )
        try:
            prepared = segmenter.prepare(self._source(source, workdir), workdir)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        self._prepared[run_id] = (segmenter, prepared)
        return PreparedSummary(
            info=prepared.info,
            meta=prepared.meta,
            timeline=prepared.timeline,
            chunk_frames=segmenter.chunk_frames(prepared.timeline),
        )

    def _get(self, run_id: str) -> tuple[Segmenter, PreparedVideo]:
        try:
            return self._prepared[run_id]
        except KeyError:
            raise RunNotFound(
                f"run {run_id} has no prepared video on this Segmenter actor "
                "(it restarted, or prepare() was not called)",
                run_id=run_id,
            ) from None

    def audio(self, run_id: str) -> AudioTrack:
        """The run's audio track (its return value goes to the object store)."""
        segmenter, prepared = self._get(run_id)
        return segmenter.extract_audio(prepared)

    def chunks(
        self, run_id: str, union_indices: np.ndarray, skip: int = 0
    ) -> Iterator[FrameChunk]:
        """Stream the union frames in chunks (call with ``num_returns="streaming"``).

        ``skip`` resumes a stream that broke off: the first ``skip`` chunks are decoded (the
        next chunk's context frame comes from them) but not emitted, so the chunks that follow
        are identical to an unbroken stream's. Each emitted chunk is archived under
        ``frames/<run_id>/`` first when the settings keep frames (the run's manifest is already
        stored by then, as the retention job expects).
        """
        segmenter, prepared = self._get(run_id)
        seg = self._settings.segmenter
        for position, chunk in enumerate(segmenter.iter_chunks(prepared, union_indices)):
            if position < skip:
                continue
            if seg.archive_frames:
                self._run_async(
                    archive_chunk(
                        self._store(), run_id, chunk, prepared.timeline,
                        quality=seg.frames_jpeg_quality,
                    )
                )
            yield chunk

    def _store(self) -> ResultStore:
        if self._result_store is None:
            self._result_store = open_store(self._settings)
        return self._result_store

    def _run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        # One loop for the actor's life: the S3 store keeps one client per event loop.
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    def holds(self, run_id: str) -> bool:
        """Whether this actor has the run's video prepared (a restarted one has none)."""
        return run_id in self._prepared

    def pid(self) -> int:
        """The actor's process id (operators and fault tests)."""
        return os.getpid()

    def release(self, run_id: str) -> None:
        """Forget the run and remove its work directory."""
        found = self._prepared.pop(run_id, None)
        if found is not None:
            found[0].release(found[1])
        shutil.rmtree(self._work_root / run_id, ignore_errors=True)


def segmenter_options(
    *, cpus: float, resources: dict[str, float] | None = None
) -> dict[str, Any]:
    """Ray options of a Segmenter actor: restarted when its process dies (runs re-prepare);
    ``resources`` (custom Ray resources) place it on chosen nodes."""
    options: dict[str, Any] = {"num_cpus": cpus, "max_restarts": -1, "max_task_retries": 0}
    if resources:
        options["resources"] = dict(resources)
    return options


__all__ = ["PreparedSummary", "SegmenterActor", "segmenter_options"]
