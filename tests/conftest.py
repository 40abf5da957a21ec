"""Shared test set-up. Area fixtures live in ``tests/fixtures/`` and are loaded as plugins."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Fixture modules (one per real service or data source); each area adds its own line.
pytest_plugins: list[str] = [
    "tests.fixtures.s3",
    "tests.fixtures.postgres",
    "tests.fixtures.ray_cluster",
    "tests.fixtures.media",
    "tests.fixtures.triton",
    "tests.fixtures.youtube",
    "tests.fixtures.api",
    "tests.fixtures.live_api",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow cases run only when TRENDFLOW_TEST_SLOW=1."""
    if os.environ.get("TRENDFLOW_TEST_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set TRENDFLOW_TEST_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test reads the developer's environment or writes into the checkout's data dir."""
    for name in list(os.environ):
        if name.startswith("TRENDFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TRENDFLOW_DATA_DIR", str(tmp_path / "trendflow-data"))
    monkeypatch.setenv("TRENDFLOW_ENV", "test")
    from trendflow.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
