"""One contract suite, run against LocalStore and S3Store (moto): same keys, same behaviour."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from trendflow.contracts import keys
from trendflow.errors import ArtifactNotFound, StorageError, UnsafeStorageKey
from trendflow.storage.base import ObjectInfo, ResultStore
from trendflow.storage.local import LocalStore

RUN = "0b7d3c1e-9f7a-4c2b-8e1d-3f5a6b7c8d9e"
OTHER_RUN = "5d0c3a1e-1111-4c2b-8e1d-3f5a6b7c8d9e"
VIDEO = "dQw4w9WgXcQ"
MANIFEST = keys.manifest_key("youtube", VIDEO, RUN)
FACES = keys.artifact_key("youtube", VIDEO, RUN, "faces")
COLORS = keys.artifact_key("youtube", VIDEO, RUN, "color_stats")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_is_a_result_store_that_names_its_location(store: ResultStore) -> None:
    assert isinstance(store, ResultStore)
    where = store.describe()
    if isinstance(store, LocalStore):
        assert where == str(store.root)
    else:
        assert where.startswith(f"s3://{store.bucket}")  # type: ignore[attr-defined]


async def test_put_get_round_trip_and_overwrite(store: ResultStore) -> None:
    info = await store.put_bytes(MANIFEST, b'{"v": 1}')
    assert info == ObjectInfo(MANIFEST, 8, sha(b'{"v": 1}'))
    assert await store.get_bytes(MANIFEST) == b'{"v": 1}'

    await store.put_bytes(MANIFEST, b'{"v": 2, "more": true}')
    assert await store.get_bytes(MANIFEST) == b'{"v": 2, "more": true}'
    assert await store.stat(MANIFEST) == ObjectInfo(MANIFEST, 22, sha(b'{"v": 2, "more": true}'))


async def test_empty_object(store: ResultStore) -> None:
    await store.put_bytes(FACES, b"")
    assert await store.get_bytes(FACES) == b""
    assert (await store.stat(FACES)).size == 0


async def test_exists_and_stat(store: ResultStore) -> None:
    assert not await store.exists(FACES)
    data = os.urandom(1000)
    await store.put_bytes(FACES, data)
    assert await store.exists(FACES)
    assert await store.stat(FACES) == ObjectInfo(FACES, 1000, sha(data))
    # A folder-like key is not an object.
    assert not await store.exists(keys.run_prefix("youtube", VIDEO, RUN) + "faces")


async def test_missing_keys_raise_artifact_not_found(store: ResultStore, tmp_path: Path) -> None:
    for call in (
        store.get_bytes(MANIFEST),
        store.stat(MANIFEST),
        store.delete(MANIFEST),
        store.get_file(MANIFEST, tmp_path / "out.json"),
    ):
        with pytest.raises(ArtifactNotFound) as info:
            await call
        assert info.value.status == 404
        assert MANIFEST in str(info.value)
    assert not (tmp_path / "out.json").exists()


async def test_list_is_sorted_and_scoped(store: ResultStore) -> None:
    other_manifest = keys.manifest_key("youtube", VIDEO, OTHER_RUN)
    frame = keys.frame_key(RUN, "000001.npy")
    for key in (FACES, MANIFEST, COLORS, other_manifest, frame):
        await store.put_bytes(key, b"x")

    run = keys.run_prefix("youtube", VIDEO, RUN)
    assert await store.list(run) == sorted([FACES, MANIFEST, COLORS])
    assert await store.list(keys.video_prefix("youtube", VIDEO)) == sorted(
        [FACES, MANIFEST, COLORS, other_manifest]
    )
    assert await store.list("") == sorted([FACES, MANIFEST, COLORS, other_manifest, frame])
    assert await store.list(keys.video_prefix("youtube", "up-0123456789abcdef")) == []


async def test_delete_and_delete_prefix(store: ResultStore) -> None:
    other_manifest = keys.manifest_key("youtube", VIDEO, OTHER_RUN)
    for key in (FACES, MANIFEST, COLORS, other_manifest):
        await store.put_bytes(key, b"x")

    await store.delete(COLORS)
    assert not await store.exists(COLORS)
    assert await store.delete_prefix(keys.run_prefix("youtube", VIDEO, RUN)) == 2
    assert await store.list("") == [other_manifest]
    assert await store.delete_prefix(keys.run_prefix("youtube", VIDEO, RUN)) == 0
    with pytest.raises(UnsafeStorageKey):
        await store.delete_prefix("")
    assert await store.list("") == [other_manifest]


async def test_put_file_and_get_file(store: ResultStore, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    source = tmp_path / "faces.npz"
    source.write_bytes(data)
    assert await store.put_file(FACES, source) == ObjectInfo(FACES, len(data), sha(data))

    dest = tmp_path / "down" / "faces.npz"
    assert await store.get_file(FACES, dest) == dest
    assert dest.read_bytes() == data
    assert [p.name for p in dest.parent.iterdir()] == ["faces.npz"]  # no temp file left


async def test_large_file_goes_through_whole(store: ResultStore, tmp_path: Path) -> None:
    # Above the S3 multipart threshold the test stores use (1 MiB): two parts of 5 + 1 MiB.
    data = os.urandom(6 * (1 << 20) + 12345)
    source = tmp_path / "big.npz"
    source.write_bytes(data)
    info = await store.put_file(FACES, source)
    assert info == ObjectInfo(FACES, len(data), sha(data))
    assert await store.stat(FACES) == info
    assert await store.get_bytes(FACES) == data


async def test_put_file_from_a_missing_source_writes_nothing(
    store: ResultStore, tmp_path: Path
) -> None:
    with pytest.raises(StorageError):
        await store.put_file(FACES, tmp_path / "absent.npz")
    assert await store.list("") == []


@pytest.mark.parametrize(
    "key",
    [
        "../outside.npz",
        "/etc/passwd",
        "result_store/youtube/../../x",
        "frames\\x",
        "frames/x\x00",
        "frames//x",
    ],
)
async def test_unsafe_keys_are_refused_everywhere(store: ResultStore, key: str) -> None:
    for call in (
        store.put_bytes(key, b"x"),
        store.get_bytes(key),
        store.stat(key),
        store.exists(key),
        store.delete(key),
    ):
        with pytest.raises(UnsafeStorageKey):
            await call
    for bad_prefix in ("../", "frames", "/"):
        with pytest.raises(UnsafeStorageKey):
            await store.list(bad_prefix)
    assert await store.list("") == []


async def test_stray_json_is_refused(store: ResultStore, tmp_path: Path) -> None:
    stray = keys.run_prefix("youtube", VIDEO, RUN) + "extra.json"
    with pytest.raises(UnsafeStorageKey) as info:
        await store.put_bytes(stray, b"{}")
    assert info.value.details["reason"] == "stray_json"
    source = tmp_path / "faces.json"
    source.write_bytes(b"{}")
    with pytest.raises(UnsafeStorageKey):
        await store.put_file(keys.run_prefix("youtube", VIDEO, RUN) + "faces/faces.json", source)
    assert await store.list("") == []
