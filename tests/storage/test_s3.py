"""S3Store behaviour beyond the shared contract: multipart, failures, credentials."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.fixtures.s3 import S3Target
from tests.storage.conftest import MIB, MakeS3Store
from trendflow.contracts import keys
from trendflow.errors import ArtifactNotFound, StorageError

RUN = "0b7d3c1e-9f7a-4c2b-8e1d-3f5a6b7c8d9e"
MANIFEST = keys.manifest_key("youtube", "dQw4w9WgXcQ", RUN)
FACES = keys.artifact_key("youtube", "dQw4w9WgXcQ", RUN, "faces")


async def test_file_above_threshold_is_uploaded_in_parts(
    make_s3_store: MakeS3Store, s3_bucket: S3Target, tmp_path: Path
) -> None:
    store = make_s3_store(s3_bucket)
    data = os.urandom(11 * MIB)
    source = tmp_path / "faces.npz"
    source.write_bytes(data)
    info = await store.put_file(FACES, source)

    head = s3_bucket.client().head_object(Bucket=s3_bucket.bucket, Key=FACES)  # type: ignore[attr-defined]
    assert head["ETag"].strip('"').endswith("-3")  # 5 + 5 + 1 MiB
    assert head["Metadata"]["sha256"] == info.sha256
    assert await store.get_bytes(FACES) == data


async def test_small_file_is_one_put(
    make_s3_store: MakeS3Store, s3_bucket: S3Target, tmp_path: Path
) -> None:
    store = make_s3_store(s3_bucket)
    source = tmp_path / "faces.npz"
    source.write_bytes(b"x" * 1000)
    await store.put_file(FACES, source)
    head = s3_bucket.client().head_object(Bucket=s3_bucket.bucket, Key=FACES)  # type: ignore[attr-defined]
    assert "-" not in head["ETag"]


async def test_failed_multipart_upload_is_aborted(
    make_s3_store: MakeS3Store, s3_bucket: S3Target, tmp_path: Path
) -> None:
    # Parts below S3's 5 MiB minimum make the server refuse the completion.
    store = make_s3_store(s3_bucket, multipart_chunk=1 * MIB)
    source = tmp_path / "faces.npz"
    source.write_bytes(os.urandom(3 * MIB))
    with pytest.raises(StorageError) as info:
        await store.put_file(FACES, source)
    assert info.value.details["s3_code"] == "EntityTooSmall"

    client = s3_bucket.client()
    assert client.list_multipart_uploads(Bucket=s3_bucket.bucket).get("Uploads", []) == []  # type: ignore[attr-defined]
    assert not await store.exists(FACES)


async def test_list_and_delete_prefix_follow_pages(
    make_s3_store: MakeS3Store, s3_bucket: S3Target
) -> None:
    store = make_s3_store(s3_bucket)
    prefix = keys.frames_prefix(RUN)
    names = [f"{i:06d}.npy" for i in range(1005)]  # more than one page (1000) and one batch
    client = s3_bucket.client()
    for name in names:
        client.put_object(Bucket=s3_bucket.bucket, Key=prefix + name, Body=b"")  # type: ignore[attr-defined]
    assert await store.list(prefix) == [prefix + n for n in names]
    assert await store.delete_prefix(prefix) == 1005
    assert await store.list("") == []


async def test_objects_from_other_tools_have_no_sha256(
    make_s3_store: MakeS3Store, s3_bucket: S3Target
) -> None:
    s3_bucket.client().put_object(Bucket=s3_bucket.bucket, Key=FACES, Body=b"abc")  # type: ignore[attr-defined]
    info = await make_s3_store(s3_bucket).stat(FACES)
    assert (info.size, info.sha256) == (3, None)


async def test_missing_bucket_is_a_storage_error(
    make_s3_store: MakeS3Store, s3_bucket: S3Target
) -> None:
    store = make_s3_store(S3Target(**{**s3_bucket.__dict__, "bucket": "no-such-bucket-here"}))
    with pytest.raises(StorageError) as info:
        await store.get_bytes(MANIFEST)
    assert not isinstance(info.value, ArtifactNotFound)
    assert info.value.details["reason"] == "no_bucket"
    with pytest.raises(StorageError):
        await store.check()
    await make_s3_store(s3_bucket).check()


async def test_unreachable_endpoint_is_a_clear_storage_error(make_s3_store: MakeS3Store) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = make_s3_store(
        S3Target(f"http://127.0.0.1:{port}", "bucket", "key-id", "unreachable-secret-value")
    )
    with pytest.raises(StorageError) as info:
        await store.put_bytes(MANIFEST, b"{}")
    assert info.value.details["reason"] == "unreachable"
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "unreachable-secret-value" not in str(info.value.to_dict())


def test_repr_hides_credentials(make_s3_store: MakeS3Store, s3_bucket: S3Target) -> None:
    store = make_s3_store(s3_bucket)
    assert s3_bucket.secret_access_key not in repr(store)
    assert s3_bucket.access_key_id not in repr(store)


async def test_s3rver_with_right_credentials_works(
    make_s3_store: MakeS3Store, s3rver: S3Target, tmp_path: Path
) -> None:
    store = make_s3_store(s3rver)
    await store.check()
    info = await store.put_bytes(MANIFEST, b'{"ok": true}')
    assert await store.stat(MANIFEST) == info
    assert await store.get_bytes(MANIFEST) == b'{"ok": true}'
    assert await store.list(keys.run_prefix("youtube", "dQw4w9WgXcQ", RUN)) == [MANIFEST]
    assert await store.delete_prefix(keys.run_prefix("youtube", "dQw4w9WgXcQ", RUN)) == 1
    with pytest.raises(ArtifactNotFound):
        await store.get_bytes(MANIFEST)


async def test_s3rver_rejects_an_unknown_access_key(
    make_s3_store: MakeS3Store, s3rver: S3Target
) -> None:
    # s3rver 3.7.1 checks the access key id of SigV4 requests but not their signature, so a
    # wrong secret cannot be provoked locally; both reach the same mapping (403 -> "auth").
    secret = "secret-value-that-must-not-leak"
    store = make_s3_store(S3Target(s3rver.endpoint_url, s3rver.bucket, "nobody-key-id", secret))
    for call in (store.put_bytes(MANIFEST, b"{}"), store.get_bytes(MANIFEST), store.check()):
        with pytest.raises(StorageError) as info:
            await call
        assert info.value.details["reason"] == "auth"
        assert "TRENDFLOW_STORAGE__S3_ACCESS_KEY_ID" in str(info.value)
        assert secret not in str(info.value.to_dict())
    assert not await make_s3_store(s3rver).exists(MANIFEST)
