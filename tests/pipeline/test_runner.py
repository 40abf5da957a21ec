"""The local runner on generated clips: manifest, artifacts, failure rules, determinism."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from tests.fixtures.media import MediaLibrary
from tests.pipeline.components._harness import analyse
from trendflow.cli import main
from trendflow.contracts.arrays import ArraySpec
from trendflow.contracts.identity import RunIdentity, upload_video_id
from trendflow.contracts.keys import run_prefix
from trendflow.contracts.npz import decode_npz
from trendflow.contracts.profile import ProfileConfig, config_hash
from trendflow.pipeline.components import get_component
from trendflow.pipeline.components.base import (
    Component,
    ComponentChunk,
    ComponentResult,
    Input,
    Resources,
    frame_outputs,
)
from trendflow.pipeline.frames_archive import read_archive
from trendflow.pipeline.runner import ABORTED, run_local
from trendflow.pipeline.sampling import Sampling
from trendflow.pipeline.segmenter import UploadSource
from trendflow.pipeline.types import VideoMeta
from trendflow.storage.local import LocalStore


class Exploding(Component):
    """A frame component that fails on its second chunk (as a buggy component would)."""

    NAME: ClassVar[str] = "exploding"
    SCHEMA_VERSION: ClassVar[int] = 1
    PRODUCER_VERSION: ClassVar[str] = "0"
    RESOURCES: ClassVar[Resources] = Resources(cpus=1, memory_mb=1)
    TIER: ClassVar[int] = 1
    INPUTS: ClassVar[frozenset[Input]] = frozenset({Input.FRAMES})
    SAMPLING: ClassVar[Sampling | None] = Sampling.at_fps(1.0)

    @classmethod
    def outputs(cls) -> dict[str, ArraySpec]:
        return frame_outputs()

    def map(self, chunk: ComponentChunk) -> Any:
        if chunk.chunk_index >= 1:
            raise ZeroDivisionError("boom in chunk 1")
        return None

    def reduce(self, partials: Sequence[Any]) -> ComponentResult:
        raise AssertionError("never reached")


async def validate_cli(store: LocalStore, identity: RunIdentity) -> int:
    """``trendflow validate <run dir>`` (its own event loop, so in a thread)."""
    run_dir = store.root / run_prefix(identity.platform_id, identity.video_id, identity.run_id)
    return await asyncio.to_thread(main, ["validate", str(run_dir)])


async def test_profile_run_writes_a_valid_run(
    media: MediaLibrary, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = ProfileConfig.parse(
        {
            "components": [
                {"name": "metadata_features"},
                {"name": "shot_detection", "params": {"adaptive_ratio": 2.5}},
                {"name": "color_stats", "required": False},
                {"name": "motion"},
                {"name": "loudness"},
                {"name": "audio_features", "enabled": False},
            ],
            "render": {"engine": "template"},
        }
    )
    clip = media.clip("scene_cuts")
    identity = RunIdentity.create(
        platform_id="upload", video_id=upload_video_id(clip.path), config_hash=config_hash(profile)
    )
    store = LocalStore(tmp_path / "store")
    manifest = await run_local(
        identity, profile, UploadSource(clip.path, VideoMeta(title="Cuts!")), store,
        tmp_path / "work", profile_id="p1", user_id="u1",
    )
    assert manifest.run.status == "ok" and manifest.run.warnings == []
    assert set(manifest.components) == {
        "metadata_features", "shot_detection", "color_stats", "motion", "loudness"
    }
    assert not manifest.components["color_stats"].required
    for rec in manifest.components.values():
        assert rec.status == "ok" and rec.device_used == "cpu"
        assert rec.duration_ms is not None and rec.peak_ram_mb and rec.peak_ram_mb > 0
        assert rec.artifacts[0].size > 0 and len(rec.artifacts[0].sha256) == 64
    assert manifest.video is not None and manifest.video.has_audio
    assert await validate_cli(store, identity) == 0, capsys.readouterr().out
    # The decoded union frames are kept under frames/<run_id>/, every timeline frame once.
    # shot_detection samples every frame, so the union is the whole timeline.
    archived = await read_archive(store, identity.run_id)
    shots_key = manifest.components["shot_detection"].artifacts[0].key
    every_frame = decode_npz(await store.get_bytes(shots_key)).arrays["frame_indices"]
    np.testing.assert_array_equal(
        np.concatenate([c.frame_indices for c in archived]), every_frame
    )
    assert archived[0].frames.dtype == np.uint8 and archived[0].frames.shape[-1] == 3


async def test_required_failure_fails_the_run_and_stays_valid(
    media: MediaLibrary, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    comps = [get_component("metadata_features")(), get_component("motion")(), Exploding()]
    manifest, _, store = await analyse(media.path("scene_cuts"), comps, tmp_path)
    assert manifest.run.status == "error"
    assert manifest.run.error is not None and "exploding" in manifest.run.error.message
    failed = manifest.components["exploding"]
    assert failed.status == "error" and failed.error is not None
    assert failed.error.code == "component_failed" and "boom" in failed.error.message
    assert manifest.components["metadata_features"].status == "ok"  # finished before
    assert manifest.components["motion"].status == "error"
    assert manifest.components["motion"].error.code == ABORTED  # type: ignore[union-attr]
    assert await validate_cli(store, manifest.identity) == 0, capsys.readouterr().out


async def test_optional_failure_leaves_a_warning(media: MediaLibrary, tmp_path: Path) -> None:
    from trendflow.pipeline.runner import PlannedComponent

    comps = [get_component("shot_detection")(), PlannedComponent(Exploding(), required=False)]
    manifest, art, _ = await analyse(media.path("scene_cuts"), comps, tmp_path)
    assert manifest.run.status == "ok"
    assert manifest.run.warnings == ["optional component exploding failed: component_failed"]
    assert manifest.components["shot_detection"].status == "ok"
    assert int(art["shot_detection"].arrays["n_cuts"]) == 3


async def test_media_error_ends_the_run_with_its_code(media: MediaLibrary, tmp_path: Path) -> None:
    manifest, art, _ = await analyse(
        media.path("3s"), [get_component("motion")()], tmp_path
    )
    assert manifest.run.status == "error"
    assert manifest.run.error is not None and manifest.run.error.code == "video_too_short"
    assert manifest.components["motion"].error.code == ABORTED  # type: ignore[union-attr]
    assert art == {}


async def test_same_input_gives_identical_arrays(media: MediaLibrary, tmp_path: Path) -> None:
    names = ("shot_detection", "color_stats", "motion", "loudness")
    runs = [
        await analyse(media.path("pan"), [get_component(n)() for n in names], tmp_path / str(i))
        for i in range(2)
    ]
    (_, first, _), (_, second, _) = runs
    for name in names:
        assert first[name].arrays.keys() == second[name].arrays.keys()
        for key, arr in first[name].arrays.items():
            np.testing.assert_array_equal(arr, second[name].arrays[key], err_msg=f"{name}.{key}")
