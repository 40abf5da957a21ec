"""The stores under test: every contract test runs once per backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.fixtures.s3 import S3Target
from trendflow.storage.base import ResultStore
from trendflow.storage.local import LocalStore
from trendflow.storage.s3 import S3Store

MIB = 1 << 20
#: Small enough that a 6 MiB test file goes multipart; parts stay at S3's 5 MiB minimum.
SMALL_THRESHOLD = 1 * MIB
PART_SIZE = 5 * MIB


def s3_store(target: S3Target, **overrides: object) -> S3Store:
    """An :class:`S3Store` on ``target`` with a small multipart threshold."""
    options: dict[str, object] = {
        "endpoint_url": target.endpoint_url,
        "region": target.region,
        "bucket": target.bucket,
        "access_key_id": target.access_key_id,
        "secret_access_key": target.secret_access_key,
        "multipart_threshold": SMALL_THRESHOLD,
        "multipart_chunk": PART_SIZE,
        "connect_timeout_s": 2.0,
        "read_timeout_s": 10.0,
        "max_attempts": 1,
    }
    options.update(overrides)
    return S3Store(**options)  # type: ignore[arg-type]


MakeS3Store = Callable[..., S3Store]


@pytest.fixture
async def make_s3_store() -> AsyncIterator[MakeS3Store]:
    """Builds S3Stores like :func:`s3_store` and closes their clients after the test."""
    made: list[S3Store] = []

    def make(target: S3Target, **overrides: object) -> S3Store:
        made.append(s3_store(target, **overrides))
        return made[-1]

    yield make
    for store in made:
        await store.close()


@pytest.fixture(params=["local", "s3"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, make_s3_store: MakeS3Store
) -> ResultStore:
    """A LocalStore in a temp dir, or an S3Store on a fresh moto bucket."""
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    return make_s3_store(request.getfixturevalue("s3_bucket"))
