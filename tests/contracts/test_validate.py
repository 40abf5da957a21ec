"""``trendflow validate``: a valid run passes; each defect of a damaged run is named."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from trendflow.cli import main
from trendflow.contracts.empty import EmptyReason
from trendflow.contracts.identity import RunIdentity, new_run_id
from trendflow.contracts.keys import artifact_key, run_prefix
from trendflow.contracts.manifest import (
    ArtifactRecord,
    ComponentRecord,
    Manifest,
    save_manifest,
)
from trendflow.contracts.npz import encode_result
from trendflow.contracts.validate import validate_run
from trendflow.pipeline.components.base import Component, ComponentResult
from trendflow.settings import get_settings
from trendflow.storage.base import ResultStore
from trendflow.storage.local import LocalStore
from trendflow.storage.s3 import S3Store

from ..fixtures.s3 import S3Target
from .conftest import CREATED, AudioLevel, Brightness, TitleStats, brightness_arrays

RESULTS: dict[type[Component], ComponentResult] = {
    Brightness: ComponentResult(arrays=brightness_arrays()),
    TitleStats: ComponentResult(arrays={"title_length": np.array(42, dtype=np.int64)}),
    AudioLevel: ComponentResult.empty(EmptyReason.AUDIO_MISSING_OR_EXTRACT_FAILED),
}


def _npz(identity: RunIdentity, cls: type[Component]) -> bytes:
    return encode_result(identity, cls, RESULTS[cls], model=None, created_at=CREATED)


async def _write_run(store: ResultStore, identity: RunIdentity) -> Manifest:
    """A finished, valid run with two ok components and one empty one, written like the runner."""
    records = {}
    for cls, result in RESULTS.items():
        key = artifact_key(identity.platform_id, identity.video_id, identity.run_id, cls.NAME)
        info = await store.put_bytes(key, _npz(identity, cls))
        records[cls.NAME] = ComponentRecord(
            status=result.status,
            schema_version=cls.SCHEMA_VERSION,
            producer_version=cls.PRODUCER_VERSION,
            started_at=CREATED,
            finished_at=CREATED + timedelta(seconds=1),
            duration_ms=1000,
            device_used="cpu",
            empty_reason=result.empty_reason,
            artifacts=[ArtifactRecord.from_info(info)],
        )
    manifest = Manifest.new(identity, components=records, created_at=CREATED)
    manifest.run.status = "ok"
    manifest.run.started_at = CREATED
    manifest.run.finished_at = CREATED + timedelta(seconds=2)
    await save_manifest(store, manifest)
    return manifest


@pytest.fixture
async def run(identity: RunIdentity, tmp_path: Path) -> tuple[LocalStore, str, Path]:
    store = LocalStore(tmp_path / "store")
    await _write_run(store, identity)
    prefix = run_prefix(identity.platform_id, identity.video_id, identity.run_id)
    return store, prefix, tmp_path / "store" / prefix


async def test_a_valid_run_has_no_problems(
    run: tuple[LocalStore, str, Path], schemas_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, prefix, run_dir = run
    assert await validate_run(store, prefix, schemas_dir=schemas_dir) == []
    code = await asyncio.to_thread(
        main, ["validate", str(run_dir), "--schemas-dir", str(schemas_dir)]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("ok: ")


async def test_every_defect_is_named(
    run: tuple[LocalStore, str, Path],
    identity: RunIdentity,
    schemas_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, prefix, run_dir = run
    # Corrupted NPZ: bytes flipped in the middle of the file.
    corrupt = run_dir / "brightness" / "brightness.npz"
    data = bytearray(corrupt.read_bytes())
    data[100:140] = bytes(40)
    corrupt.write_bytes(bytes(data))
    # Missing artifact.
    (run_dir / "title_stats" / "title_stats.npz").unlink()
    # Another run's id in one NPZ meta.
    other = identity.model_copy(update={"run_id": new_run_id()})
    (run_dir / "audio_level" / "audio_level.npz").write_bytes(_npz(other, AudioLevel))
    # A stray JSON file.
    (run_dir / "extra.json").write_text("{}")

    problems = await validate_run(store, prefix, schemas_dir=schemas_dir)
    text = "\n".join(problems)
    assert f"{prefix}brightness/brightness.npz: sha256" in text
    assert any(
        p.startswith(f"{prefix}brightness/brightness.npz: not a readable NPZ") for p in problems
    )
    assert f"{prefix}title_stats/title_stats.npz: missing" in text
    assert (
        f"{prefix}audio_level/audio_level.npz: meta run_id {other.run_id!r} differs from the "
        f"run's {identity.run_id!r}" in problems
    )
    assert f"{prefix}extra.json: stray JSON file" in text

    code = await asyncio.to_thread(
        main, ["validate", str(run_dir), "--schemas-dir", str(schemas_dir)]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out == problems


async def test_a_mismatched_run_id_alone_is_the_only_problem(
    run: tuple[LocalStore, str, Path], identity: RunIdentity, schemas_dir: Path
) -> None:
    """With size and sha256 updated in the manifest, the identity check alone catches it."""
    store, prefix, run_dir = run
    other = identity.model_copy(update={"run_id": new_run_id()})
    key = artifact_key(identity.platform_id, identity.video_id, identity.run_id, "title_stats")
    info = await store.put_bytes(key, _npz(other, TitleStats))
    manifest = Manifest.from_json_bytes((run_dir / "manifest.json").read_bytes())
    manifest.components["title_stats"].artifacts = [ArtifactRecord.from_info(info)]
    await save_manifest(store, manifest)
    assert await validate_run(store, prefix, schemas_dir=schemas_dir) == [
        f"{key}: meta run_id {other.run_id!r} differs from the run's {identity.run_id!r}"
    ]


async def test_manifest_problems(run: tuple[LocalStore, str, Path], schemas_dir: Path) -> None:
    store, prefix, run_dir = run
    manifest_path = run_dir / "manifest.json"
    good = manifest_path.read_bytes()

    manifest_path.write_bytes(good.replace(b'"status": "ok"', b'"status": "great"', 1))
    problems = await validate_run(store, prefix, schemas_dir=schemas_dir)
    assert any("manifest.json: " in p and "status" in p for p in problems)

    manifest = Manifest.from_json_bytes(good)
    artifact = manifest.components["brightness"].artifacts[0]
    artifact.size += 1
    manifest_path.write_bytes(manifest.to_json_bytes())
    assert await validate_run(store, prefix, schemas_dir=schemas_dir) == [
        f"{prefix}brightness/brightness.npz: size {artifact.size - 1} bytes, "
        f"the manifest says {artifact.size}"
    ]

    manifest = Manifest.from_json_bytes(good)
    manifest.components["brightness"].producer_version = "9.9.9"
    manifest_path.write_bytes(manifest.to_json_bytes())
    assert await validate_run(store, prefix, schemas_dir=schemas_dir) == [
        f"{prefix}brightness/brightness.npz: meta producer_version '1.1.0' differs from the "
        "manifest's '9.9.9'"
    ]

    manifest_path.unlink()
    problems = await validate_run(store, prefix, schemas_dir=schemas_dir)
    assert problems[0] == f"{prefix}manifest.json: missing"
    assert f"{prefix}brightness/brightness.npz: file not listed in the manifest" in problems


async def test_unlisted_files_and_unknown_schemas(
    run: tuple[LocalStore, str, Path], schemas_dir: Path
) -> None:
    store, prefix, run_dir = run
    (run_dir / "brightness" / "preview.png").write_bytes(b"\x89PNG")
    (schemas_dir / "components" / "title_stats.schema.json").unlink()
    problems = await validate_run(store, prefix, schemas_dir=schemas_dir)
    assert f"{prefix}brightness/preview.png: file not listed in the manifest" in problems
    assert any(
        p.startswith(f"{prefix}title_stats/title_stats.npz: no schema for component")
        for p in problems
    )


async def test_nothing_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = LocalStore(tmp_path)
    prefix = run_prefix("youtube", "dQw4w9WgXcQ", new_run_id())
    assert (await validate_run(store, prefix))[0].endswith("no files under this prefix")
    assert main(["validate", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


async def test_a_run_in_an_s3_bucket(
    s3_bucket: S3Target,
    identity: RunIdentity,
    schemas_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = S3Store(
        endpoint_url=s3_bucket.endpoint_url,
        region=s3_bucket.region,
        bucket=s3_bucket.bucket,
        access_key_id=s3_bucket.access_key_id,
        secret_access_key=s3_bucket.secret_access_key,
    )
    await _write_run(store, identity)
    prefix = run_prefix(identity.platform_id, identity.video_id, identity.run_id)
    monkeypatch.setenv("TRENDFLOW_STORAGE__S3_ENDPOINT_URL", s3_bucket.endpoint_url)
    monkeypatch.setenv("TRENDFLOW_STORAGE__S3_ACCESS_KEY_ID", s3_bucket.access_key_id)
    monkeypatch.setenv("TRENDFLOW_STORAGE__S3_SECRET_ACCESS_KEY", s3_bucket.secret_access_key)
    get_settings.cache_clear()
    target = f"s3://{s3_bucket.bucket}/{prefix}"
    args = ["validate", target, "--schemas-dir", str(schemas_dir)]

    assert await asyncio.to_thread(main, args) == 0, capsys.readouterr().out
    assert capsys.readouterr().out.startswith(f"ok: s3://{s3_bucket.bucket}")

    # Another tool wrote a JSON file next to the manifest (the store itself refuses to).
    s3_bucket.client().put_object(  # type: ignore[attr-defined]
        Bucket=s3_bucket.bucket, Key=f"{prefix}summary.json", Body=b"{}"
    )
    assert await asyncio.to_thread(main, args) == 1
    assert (
        capsys.readouterr().out
        == f"{prefix}summary.json: stray JSON file (only manifest.json may be stored in a run)\n"
    )
