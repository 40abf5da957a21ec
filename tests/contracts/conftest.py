"""Small components and a run identity for the contract tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trendflow.contracts.arrays import ArraySpec
from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.profile import (
    ComponentConfig,
    ProfileConfig,
    RenderSettings,
    config_hash,
)
from trendflow.pipeline.components.base import (
    Component,
    ComponentResult,
    Input,
    Resources,
    frame_outputs,
)
from trendflow.pipeline.components.schemas import generate_schema_files
from trendflow.pipeline.sampling import Sampling

CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class Brightness(Component):
    """Mean brightness per sampled frame."""

    NAME = "brightness"
    SCHEMA_VERSION = 2
    PRODUCER_VERSION = "1.1.0"
    RESOURCES = Resources(cpus=1, memory_mb=64)
    TIER = 1
    INPUTS = frozenset({Input.FRAMES})
    SAMPLING = Sampling.at_fps(2)

    @classmethod
    def outputs(cls) -> dict[str, ArraySpec]:
        return {
            **frame_outputs(),
            "brightness": ArraySpec("float32", ("n_frames",), "Mean luma.", unit="0-255"),
            "histogram": ArraySpec("int32", ("n_frames", 16), "Luma histogram."),
            "label": ArraySpec("<U8", (), "A short label."),
        }

    def reduce(self, partials: Sequence[Any]) -> ComponentResult:
        raise NotImplementedError  # never run: the tests only need the declared contract


class TitleStats(Component):
    """Title statistics (not frame-based)."""

    NAME = "title_stats"
    SCHEMA_VERSION = 1
    PRODUCER_VERSION = "1.0.0"
    RESOURCES = Resources(cpus=1, memory_mb=16)
    TIER = 0
    INPUTS = frozenset({Input.METADATA})

    @classmethod
    def outputs(cls) -> dict[str, ArraySpec]:
        return {"title_length": ArraySpec("int64", (), "Characters in the title.")}

    def reduce(self, partials: Sequence[Any]) -> ComponentResult:
        raise NotImplementedError


class AudioLevel(Component):
    """RMS level of the audio track (the tests use its empty result)."""

    NAME = "audio_level"
    SCHEMA_VERSION = 1
    PRODUCER_VERSION = "0.3.0"
    RESOURCES = Resources(cpus=1, memory_mb=16)
    TIER = 1
    INPUTS = frozenset({Input.AUDIO})

    @classmethod
    def outputs(cls) -> dict[str, ArraySpec]:
        return {"rms_db": ArraySpec("float32", ("n_windows",), "RMS level.", unit="dBFS")}

    def reduce(self, partials: Sequence[Any]) -> ComponentResult:
        raise NotImplementedError


TEST_COMPONENTS: dict[str, type[Component]] = {
    c.NAME: c for c in (Brightness, TitleStats, AudioLevel)
}


def brightness_arrays(n: int = 5) -> dict[str, np.ndarray]:
    """A valid ``ok`` result of :class:`Brightness` with ``n`` frames."""
    idx = np.arange(0, 6 * n, 6, dtype=np.int64)
    return {
        "frame_indices": idx,
        "timestamps_s": idx / 12.0,
        "brightness": np.linspace(10, 200, n, dtype=np.float32),
        "histogram": np.arange(n * 16, dtype=np.int32).reshape(n, 16),
        "label": np.array("bright", dtype="<U8"),
    }


@pytest.fixture
def identity() -> RunIdentity:
    profile = ProfileConfig(
        components=[ComponentConfig(name="brightness"), ComponentConfig(name="title_stats")],
        render=RenderSettings(engine="template"),
    )
    return RunIdentity.create(
        platform_id="youtube", video_id="dQw4w9WgXcQ", config_hash=config_hash(profile)
    )


@pytest.fixture
def schemas_dir(tmp_path: Path) -> Path:
    """A schemas directory generated for the test components."""
    path = tmp_path / "schemas"
    generate_schema_files(path, TEST_COMPONENTS)
    return path
