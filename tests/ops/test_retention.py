"""The retention job on a real local store: old frames and old raw OCR text go, the rest stays."""

from __future__ import annotations

import io
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.keys import artifact_key, manifest_key, run_prefix
from trendflow.contracts.manifest import (
    ArtifactRecord,
    ComponentRecord,
    Manifest,
    load_manifest,
    save_manifest,
)
from trendflow.contracts.npz import decode_npz, encode_result
from trendflow.contracts.validate import validate_run
from trendflow.jobs import retention
from trendflow.pipeline.components.base import ComponentResult
from trendflow.pipeline.components.model_backed import pack_texts, sha256_text
from trendflow.pipeline.components.ocr_text import OcrText
from trendflow.pipeline.frames_archive import archive_chunk, read_archive
from trendflow.pipeline.types import FrameChunk, Timeline
from trendflow.settings import Settings
from trendflow.storage.base import ResultStore
from trendflow.storage.factory import open_store
from trendflow.storage.local import LocalStore

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TIMELINE = Timeline(fps=12.0, width=32, height=16, n_frames=24, sampling_policy_version="1")
LINES = ["SALE -50%", "subscribe", "SALE -50%"]


def _ocr_arrays(raw: bool) -> dict[str, np.ndarray]:
    """A valid ocr_text result with three lines read in two frames."""
    buf, spans = pack_texts(LINES) if raw else (np.zeros(0, np.uint8), np.zeros((3, 2), np.int64))
    emb = np.full(384, 1 / np.sqrt(384), np.float32)
    return {
        "frame_indices": np.array([0, 12], np.int64),
        "timestamps_s": np.array([0.0, 1.0]),
        "box_frame": np.array([0, 0, 1], np.int32),
        "box_quads": np.full((3, 4, 2), 0.5, np.float32),
        "box_scores": np.array([0.9, 0.8, 0.95], np.float32),
        "text_lengths": np.array([len(t) for t in LINES], np.int32),
        "text_sha256": np.array([sha256_text(t) for t in LINES], dtype="<U64"),
        "raw_text_stored": np.array(raw),
        "text_utf8": buf,
        "text_spans": spans,
        "text_embedding": emb,
        "box_count": np.array([2, 1], np.int32),
        "text_area_ratio": np.array([0.1, 0.05], np.float32),
        "frame_mean_score": np.array([0.85, 0.95], np.float32),
        "frames_with_text_ratio": np.array(1.0),
        "mean_text_area_ratio": np.array(0.075),
        "distinct_lines": np.array(2, np.int32),
    }


async def _write_run(
    store: ResultStore, *, age_days: float, raw_text: bool, frames: bool = True
) -> RunIdentity:
    """A finished run created ``age_days`` before NOW, with an ocr_text artifact and frames."""
    identity = RunIdentity.create(platform_id="youtube", video_id="dQw4w9WgXcQ",
                                  config_hash="ab" * 32)
    at = NOW - timedelta(days=age_days)
    data = encode_result(identity, OcrText, ComponentResult(_ocr_arrays(raw_text)),
                         model="ocr:1", created_at=at)
    key = artifact_key("youtube", "dQw4w9WgXcQ", identity.run_id, OcrText.NAME)
    info = await store.put_bytes(key, data)
    record = ComponentRecord(
        status="ok", schema_version=OcrText.SCHEMA_VERSION,
        producer_version=OcrText.PRODUCER_VERSION, model="ocr:1", started_at=at,
        finished_at=at + timedelta(seconds=3), duration_ms=3000, device_used="triton",
        artifacts=[ArtifactRecord.from_info(info)],
    )
    manifest = Manifest.new(identity, components={OcrText.NAME: record}, created_at=at)
    manifest.run.status, manifest.run.started_at = "ok", at
    manifest.run.finished_at = at + timedelta(seconds=5)
    await save_manifest(store, manifest)
    if frames:
        await _write_frames(store, identity.run_id)
    return identity


async def _write_frames(store: ResultStore, run_id: str) -> None:
    rng = np.random.default_rng(0)
    for index in range(2):
        chunk = FrameChunk(
            index=index,
            frame_indices=np.arange(index * 12, index * 12 + 12, 6, dtype=np.int64),
            timestamps_s=np.arange(index * 12, index * 12 + 12, 6) / 12.0,
            frames=rng.integers(0, 255, (2, 16, 32, 3), dtype=np.uint8),
        )
        await archive_chunk(store, run_id, chunk, TIMELINE)


def _prefix(identity: RunIdentity) -> str:
    return run_prefix(identity.platform_id, identity.video_id, identity.run_id)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # frames: 7 days; raw text allowed, for 60 days
    return Settings(data_dir=tmp_path / "data",
                    retention={"store_raw_ocr_text": True})  # type: ignore[arg-type]


async def test_old_frames_and_old_raw_text_go_new_ones_stay(
    tmp_path: Path, settings: Settings
) -> None:
    store = LocalStore(tmp_path / "store")
    fresh = await _write_run(store, age_days=2, raw_text=True)
    week_old = await _write_run(store, age_days=8, raw_text=True)
    ancient = await _write_run(store, age_days=90, raw_text=True)
    no_raw = await _write_run(store, age_days=90, raw_text=False)
    orphan = str(uuid.uuid4())
    await _write_frames(store, orphan)
    before_ancient = await store.get_bytes(
        artifact_key("youtube", "dQw4w9WgXcQ", ancient.run_id, "ocr_text"))

    report = await retention.apply_retention(store, settings, now=NOW)

    assert sorted(report.frames_deleted_runs) == sorted(
        [week_old.run_id, ancient.run_id, no_raw.run_id])
    assert report.frames_deleted_objects == 6
    assert report.frames_orphans == [orphan]
    assert await store.list(f"frames/{week_old.run_id}/") == []
    assert await store.list(f"frames/{ancient.run_id}/") == []
    assert len(await read_archive(store, fresh.run_id)) == 2  # kept and still readable
    assert len(await store.list(f"frames/{orphan}/")) == 2  # orphans need --delete-orphans
    assert report.failures == {}

    # Raw text: only the 90-day-old run that stored it was rewritten.
    assert [s.run_id for s in report.raw_text_stripped] == [ancient.run_id]
    key = artifact_key("youtube", "dQw4w9WgXcQ", ancient.run_id, "ocr_text")
    after = decode_npz(await store.get_bytes(key))
    assert not bool(after.arrays["raw_text_stored"])
    assert after.arrays["text_utf8"].size == 0
    assert not after.arrays["text_spans"].any()
    assert b"SALE -50%" in _members_text(before_ancient)  # the fixture did store the text
    assert b"SALE -50%" not in _members_text(await store.get_bytes(key))
    before = decode_npz(before_ancient)
    for name in ("text_sha256", "text_lengths", "text_embedding", "box_quads"):
        np.testing.assert_array_equal(after.arrays[name], before.arrays[name])
    assert after.meta == before.meta

    manifest = await load_manifest(store, manifest_key("youtube", "dQw4w9WgXcQ", ancient.run_id))
    record = manifest.components["ocr_text"]
    assert record.notes and record.notes[0].startswith("retention: raw text removed on 2026-06-01")
    # The manifest tells the truth about the rewritten file: the whole run still validates.
    for identity in (fresh, week_old, ancient, no_raw):
        assert await validate_run(store, _prefix(identity)) == []
    fresh_npz = decode_npz(await store.get_bytes(
        artifact_key("youtube", "dQw4w9WgXcQ", week_old.run_id, "ocr_text")))
    assert bool(fresh_npz.arrays["raw_text_stored"])  # 8 days < 60: text kept

    # A second pass has nothing left to do.
    again = await retention.apply_retention(store, settings, now=NOW)
    assert again.frames_deleted_runs == [] and again.raw_text_stripped == []
    assert again.frames_kept_runs == 1


def _members_text(data: bytes) -> bytes:
    """Concatenated uncompressed members of an NPZ (to look for raw bytes)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return b"".join(zf.read(n) for n in zf.namelist())


async def test_dry_run_changes_nothing(tmp_path: Path, settings: Settings) -> None:
    store = LocalStore(tmp_path / "store")
    ancient = await _write_run(store, age_days=90, raw_text=True)
    orphan = str(uuid.uuid4())
    await _write_frames(store, orphan)
    root = tmp_path / "store"
    snapshot = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}

    report = await retention.apply_retention(store, settings, now=NOW, dry_run=True,
                                             delete_orphans=True)

    assert report.frames_deleted_runs == [ancient.run_id]
    assert report.frames_deleted_objects == 4  # 2 of the run + 2 orphans
    assert len(report.raw_text_stripped) == 1
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == snapshot


async def test_orphans_deleted_on_request_and_retention_days_follow_settings(
    tmp_path: Path
) -> None:
    store = LocalStore(tmp_path / "store")
    run = await _write_run(store, age_days=2, raw_text=True)
    orphan = str(uuid.uuid4())
    await _write_frames(store, orphan)
    strict = Settings(data_dir=tmp_path / "d", segmenter={"frames_retention_days": 1},
                      retention={"store_raw_ocr_text": True, "raw_text_max_days": 1})

    report = await retention.apply_retention(store, strict, now=NOW, delete_orphans=True)

    assert report.frames_deleted_runs == [run.run_id]
    assert report.orphans_deleted and await store.list("frames/") == []
    assert [s.run_id for s in report.raw_text_stripped] == [run.run_id]
    assert await validate_run(store, _prefix(run)) == []


async def test_a_broken_manifest_is_reported_and_fails_the_job(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    store_root = tmp_path / "store"
    store = LocalStore(store_root)
    good = await _write_run(store, age_days=30, raw_text=False)
    bad = await _write_run(store, age_days=30, raw_text=False, frames=False)
    bad_key = manifest_key("youtube", "dQw4w9WgXcQ", bad.run_id)
    await store.put_bytes(bad_key, b"{not json")
    settings = settings.model_copy(update={
        "storage": settings.storage.model_copy(update={"local_root": store_root})})

    code = await retention.run_job(
        retention.build_parser().parse_args(["--no-index"]), settings, clock=lambda: NOW)

    out = capsys.readouterr()
    assert code == 1
    assert bad_key in out.err
    assert "deleted frames of 1 runs (2 objects)" in out.out
    assert await store.list(f"frames/{good.run_id}/") == []


async def test_the_job_updates_the_index_from_the_rewritten_manifest(
    tmp_path: Path, settings: Settings, db_url: str
) -> None:
    from trendflow.db.pool import connect
    from trendflow.db.rebuild import rebuild_index

    store_root = tmp_path / "store"
    store = LocalStore(store_root)
    ancient = await _write_run(store, age_days=90, raw_text=True)
    conn = await connect(db_url)
    try:
        assert (await rebuild_index(conn, store)).ok
        settings = settings.model_copy(update={
            "storage": settings.storage.model_copy(update={"local_root": store_root}),
            "database": settings.database.model_copy(update={"url": SecretStr(db_url)}),
        })
        code = await retention.run_job(
            retention.build_parser().parse_args([]), settings, clock=lambda: NOW)
        assert code == 0
        key = artifact_key("youtube", "dQw4w9WgXcQ", ancient.run_id, "ocr_text")
        row = await conn.fetchrow("SELECT size_bytes, sha256 FROM artifacts WHERE key = $1", key)
        info = await store.stat(key)
        assert (row["size_bytes"], row["sha256"]) == (info.size, info.sha256)
        notes = await conn.fetchval(
            "SELECT notes FROM run_components WHERE run_id = $1 AND component_name = $2",
            uuid.UUID(ancient.run_id), "ocr_text")
        assert notes[0].startswith("retention: raw text removed")
    finally:
        await conn.close()


async def test_a_pass_interrupted_between_file_and_manifest_is_finished_next_time(
    tmp_path: Path, settings: Settings
) -> None:
    store = LocalStore(tmp_path / "store")
    ancient = await _write_run(store, age_days=90, raw_text=True, frames=False)
    key = artifact_key("youtube", "dQw4w9WgXcQ", ancient.run_id, "ocr_text")
    # What a pass killed after writing the NPZ leaves: new file, old manifest.
    rewritten = retention._strip(await store.get_bytes(key), "ocr_text",
                                 retention.RAW_TEXT_COMPONENTS["ocr_text"], key)
    assert rewritten is not None
    await store.put_bytes(key, rewritten)
    assert any("sha256" in p for p in await validate_run(store, _prefix(ancient)))

    report = await retention.apply_retention(store, settings, now=NOW)

    assert [s.key for s in report.raw_text_stripped] == [key]
    assert await store.get_bytes(key) == rewritten
    assert await validate_run(store, _prefix(ancient)) == []


@pytest.mark.parametrize("backend", ["local", "s3"])
async def test_turning_raw_text_off_removes_what_was_stored(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """With the policy off, stored raw text of any age goes (dry run first), on disk and S3."""
    storage: dict[str, object] = {"backend": "local", "local_root": tmp_path / "store"}
    if backend == "s3":
        target = request.getfixturevalue("s3_bucket")
        storage = {"backend": "s3", "s3_bucket": target.bucket,
                   "s3_endpoint_url": target.endpoint_url,
                   "s3_access_key_id": target.access_key_id,
                   "s3_secret_access_key": target.secret_access_key}
    off = Settings(data_dir=tmp_path / "data", storage=storage,  # type: ignore[arg-type]
                   retention={"store_raw_ocr_text": False})  # type: ignore[arg-type]
    store = open_store(off)
    yesterday = await _write_run(store, age_days=1, raw_text=True, frames=False)
    key = artifact_key("youtube", "dQw4w9WgXcQ", yesterday.run_id, "ocr_text")

    dry = await retention.apply_retention(store, off, now=NOW, dry_run=True)
    assert [s.run_id for s in dry.raw_text_stripped] == [yesterday.run_id]
    assert b"SALE -50%" in _members_text(await store.get_bytes(key))  # nothing changed yet

    report = await retention.apply_retention(store, off, now=NOW)
    assert [s.run_id for s in report.raw_text_stripped] == [yesterday.run_id]
    assert b"SALE -50%" not in _members_text(await store.get_bytes(key))
    manifest = await load_manifest(store, manifest_key("youtube", "dQw4w9WgXcQ",
                                                       yesterday.run_id))
    assert "storing raw text is turned off" in manifest.components["ocr_text"].notes[0]
    assert await validate_run(store, _prefix(yesterday)) == []
