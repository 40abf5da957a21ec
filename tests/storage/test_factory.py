"""open_store: the configured backend, or a ConfigError that names what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.s3 import S3Target
from trendflow.contracts import keys
from trendflow.errors import ConfigError
from trendflow.settings import Settings, StorageSettings, get_settings
from trendflow.storage.factory import open_store
from trendflow.storage.local import LocalStore
from trendflow.storage.s3 import S3Store

MANIFEST = keys.manifest_key("youtube", "dQw4w9WgXcQ", "0b7d3c1e-9f7a-4c2b-8e1d-3f5a6b7c8d9e")


async def test_default_is_a_local_store_under_the_data_dir(tmp_path: Path) -> None:
    settings = get_settings()  # TRENDFLOW_DATA_DIR points into tmp_path (tests/conftest.py)
    store = open_store(settings)
    assert isinstance(store, LocalStore)
    assert store.root == settings.store_root.resolve()
    await store.put_bytes(MANIFEST, b"{}")
    assert (settings.store_root / MANIFEST).read_bytes() == b"{}"


def test_s3_without_bucket_or_credentials_names_the_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRENDFLOW_STORAGE__BACKEND", "s3")
    monkeypatch.setenv("TRENDFLOW_STORAGE__S3_ACCESS_KEY_ID", "key-id")
    with pytest.raises(ConfigError) as info:
        open_store(Settings())
    message = str(info.value)
    assert "TRENDFLOW_STORAGE__S3_BUCKET" in message
    assert "TRENDFLOW_STORAGE__S3_SECRET_ACCESS_KEY" in message
    assert "TRENDFLOW_STORAGE__S3_ACCESS_KEY_ID" not in message


async def test_s3_from_the_environment_round_trips(
    s3_bucket: S3Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "BACKEND": "s3",
        "S3_ENDPOINT_URL": s3_bucket.endpoint_url,
        "S3_BUCKET": s3_bucket.bucket,
        "S3_ACCESS_KEY_ID": s3_bucket.access_key_id,
        "S3_SECRET_ACCESS_KEY": s3_bucket.secret_access_key,
    }.items():
        monkeypatch.setenv(f"TRENDFLOW_STORAGE__{name}", value)
    store = open_store(Settings())
    assert isinstance(store, S3Store)
    assert store.describe() == f"s3://{s3_bucket.bucket} at {s3_bucket.endpoint_url}"
    await store.put_bytes(MANIFEST, b'{"run": 1}')
    assert await store.get_bytes(MANIFEST) == b'{"run": 1}'
    assert s3_bucket.secret_access_key not in repr(Settings().storage)
    await store.close()


def test_multipart_sizes_come_from_settings() -> None:
    settings = Settings(
        storage=StorageSettings(
            backend="s3",
            s3_bucket="b",
            s3_access_key_id="k",  # type: ignore[arg-type]
            s3_secret_access_key="s",  # type: ignore[arg-type]
            s3_multipart_threshold_mb=32,
            s3_multipart_chunk_mb=10,
        )
    )
    store = open_store(settings)
    assert isinstance(store, S3Store)
    assert (store.multipart_threshold, store.multipart_chunk) == (32 << 20, 10 << 20)
