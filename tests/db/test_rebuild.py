"""Rebuild: the index restored from manifests alone matches what the services wrote."""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest

from tests.fixtures.s3 import S3Target
from tests.storage.conftest import s3_store
from trendflow.cli import main
from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.keys import artifact_key, manifest_key
from trendflow.contracts.manifest import (
    ArtifactRecord,
    ComponentRecord,
    ErrorInfo,
    Manifest,
    RunError,
    VideoSection,
    load_manifest,
    save_manifest,
)
from trendflow.contracts.profile import ModelRef
from trendflow.db.pool import Database, connect
from trendflow.db.rebuild import rebuild_index
from trendflow.db.repositories import components as comp_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.db.repositories import users as users_repo
from trendflow.db.repositories import videos as videos_repo
from trendflow.errors import ComponentError
from trendflow.pipeline.execution import ABORTED
from trendflow.pipeline.types import VideoMeta
from trendflow.runs.sources import upload_source, video_title, youtube_source
from trendflow.storage.base import ResultStore
from trendflow.storage.local import LocalStore
from trendflow.storage.s3 import S3Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# What a manifest carries (DESIGN.md §3), so a rebuild into an empty index restores it. Not in
# the files, so not restored there: a run's idempotency key, callback, worker, attempts, heartbeat
# and reuse, a video's description and metadata, the index's own updated_at / artifact
# created_at (the time of the restore), rows the manifests do not list (the render row).
SNAPSHOT = {
    "videos": "platform_id, video_id, title, duration_s, fps, width, height, has_audio, source, "
    "preprocessing, created_at",
    "runs": "run_id, platform_id, video_id, user_id, profile_id, config_hash, "
    "sampling_policy_version, dataprocessor_version, model_signature, model_mapping, "
    "profile_config, source, status, stage, error, warnings, created_at, started_at, finished_at",
    "run_components": "run_id, component_name, status, required, schema_version, "
    "producer_version, model, started_at, finished_at, duration_ms, device_used, error, "
    "empty_reason, notes, peak_ram_mb, gpu_memory_mb",
    "artifacts": "key, run_id, component_name, size_bytes, sha256",
}
INDEX = tuple(SNAPSHOT)


async def _snapshot(conn: asyncpg.Connection) -> dict[str, list[asyncpg.Record]]:
    return {
        table: await conn.fetch(f"SELECT {cols} FROM {table} ORDER BY 1, 2")
        for table, cols in SNAPSHOT.items()
    }


async def _rows(conn: asyncpg.Connection) -> dict[str, list[asyncpg.Record]]:
    """Every column of every index row (updated_at included), plus users and the ledger."""
    tables = (*INDEX, "users", "billing_ledger")
    return {t: await conn.fetch(f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables}


PROFILE = {"components": [{"name": "motion", "params": {}, "required": True}],
           "sampling": {"fps": 2.0, "height": 320, "version": "tl12-h320-v1"}}


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ResultStore]:
    """The same rebuild runs over a LocalStore and over an S3Store on the moto server."""
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
        return
    s3 = s3_store(request.getfixturevalue("s3_bucket"))
    yield s3
    await s3.close()


def _npz(values: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, values=values)
    return buf.getvalue()


def _source(platform_id: str, video_id: str) -> dict[str, Any]:
    if platform_id == "upload":
        return upload_source(f"upload_content/{'ab' * 32}", VideoMeta(title="secret title"))
    return youtube_source(f"https://www.youtube.com/watch?v={video_id}")


async def _write_run(
    conn: asyncpg.Connection,
    store: ResultStore,
    *,
    video_id: str,
    user_id: uuid.UUID | None,
    status: str,
    offset_min: int,
    platform_id: str = "youtube",
) -> str:
    """Do what the services do: NPZ + manifest into the store, the same facts into the index
    (the row written at enqueue, the probe facts once probed, the ending's status and error)."""
    run_id = str(uuid.uuid4())
    source = _source(platform_id, video_id)
    identity = RunIdentity(
        platform_id=platform_id,  # type: ignore[arg-type]
        video_id=video_id,
        run_id=run_id,
        config_hash=hashlib.sha256(b"fast").hexdigest(),
        sampling_policy_version="tl12-h320-v1",
        dataprocessor_version="0.1.0",
    )
    created = T0 + timedelta(minutes=offset_min)
    started, finished = created + timedelta(seconds=5), created + timedelta(seconds=65)
    mapping = {"faces": ModelRef(name="face_detector", version="1")}
    comps: dict[str, ComponentRecord] = {}
    for i, name in enumerate(("motion", "color_stats")):
        info = await store.put_bytes(
            artifact_key(platform_id, video_id, run_id, name), _npz(np.arange(10 + i))
        )
        comps[name] = ComponentRecord(
            status="ok",
            schema_version=1,
            producer_version="1.0",
            started_at=started,
            finished_at=finished,
            duration_ms=60_000,
            device_used="cpu",
            peak_ram_mb=120.5,
            notes=[f"n{i}"],
            artifacts=[ArtifactRecord.from_info(info)],
        )
    empty = await store.put_bytes(
        artifact_key(platform_id, video_id, run_id, "faces"), _npz(np.zeros(0))
    )
    comps["faces"] = ComponentRecord(
        status="empty",
        schema_version=2,
        producer_version="1.1",
        model="face_detector:1",
        started_at=started,
        finished_at=finished,
        duration_ms=1000,
        device_used="triton:gpu",
        gpu_memory_mb=900.0,
        empty_reason="no_faces_in_video",
        artifacts=[ArtifactRecord.from_info(empty)],
    )
    if status == "error":
        comps["loudness"] = ComponentRecord(
            status="error",
            schema_version=1,
            producer_version="1.0",
            started_at=started,
            finished_at=finished,
            error=ErrorInfo(code="component_failed", message="boom"),
        )
    manifest = Manifest.new(
        identity,
        components=comps,
        model_mapping=mapping,
        profile_id="fast",
        user_id=None if user_id is None else str(user_id),
        profile_config=PROFILE,
        source=source,
        created_at=created,
    )
    manifest.video = VideoSection(
        duration_s=61.5,
        fps=30.0,
        width=1280,
        height=720,
        has_audio=True,
        video_codec="h264",
        audio_codec="aac",
        container="mp4",
        source="upload" if platform_id == "upload" else "youtube",
    )
    manifest.run.status = status  # type: ignore[assignment]
    manifest.run.started_at, manifest.run.finished_at = started, finished
    manifest.run.warnings = ["optional component ocr_text skipped"]
    if status == "error":
        manifest.run.error = RunError.of(
            ComponentError("loudness failed", component="loudness", attempts=2))
    await save_manifest(store, manifest)

    # The index as the services keep it.
    await videos_repo.upsert_video(
        conn,
        platform_id=platform_id,
        video_id=video_id,
        title=video_title(source),
        source=source,
        created_at=created,
    )
    await videos_repo.upsert_video(
        conn, platform_id=platform_id, video_id=video_id,
        **videos_repo.probe_columns(manifest.video),
    )
    await runs_repo.create_run(
        conn,
        run_id=uuid.UUID(run_id),
        platform_id=platform_id,
        video_id=video_id,
        user_id=user_id,
        profile_id="fast",
        config_hash=identity.config_hash,
        sampling_policy_version=identity.sampling_policy_version,
        dataprocessor_version=identity.dataprocessor_version,
        model_signature=manifest.run.model_signature,
        model_mapping={k: v.ref for k, v in mapping.items()},
        profile_config=PROFILE,
        source=source,
        status=status,  # type: ignore[arg-type]
        stage=status,
        error=None if manifest.run.error is None else manifest.run.error.model_dump(mode="json"),
        warnings=list(manifest.run.warnings),
        idempotency_key=f"k-{run_id}",
        created_at=created,
        started_at=started,
        finished_at=finished,
    )
    for name, rec in comps.items():
        await comp_repo.upsert_run_component(
            conn,
            run_id=uuid.UUID(run_id),
            component_name=name,
            status=rec.status,
            required=rec.required,
            schema_version=rec.schema_version,
            producer_version=rec.producer_version,
            model=rec.model,
            started_at=rec.started_at,
            finished_at=rec.finished_at,
            duration_ms=rec.duration_ms,
            device_used=rec.device_used,
            error=None if rec.error is None else rec.error.model_dump(),
            empty_reason=rec.empty_reason,
            notes=rec.notes,
            peak_ram_mb=rec.peak_ram_mb,
            gpu_memory_mb=rec.gpu_memory_mb,
        )
        for art in rec.artifacts:
            await comp_repo.add_artifact(
                conn,
                key=art.key,
                run_id=uuid.UUID(run_id),
                component_name=name,
                size_bytes=art.size,
                sha256=art.sha256,
            )
    return run_id


async def _populate(conn: asyncpg.Connection, store: ResultStore) -> uuid.UUID:
    user = await users_repo.create_user(conn, email="owner@example.com")
    await _write_run(
        conn, store, video_id="aaaaaaaaaaa", user_id=user.user_id, status="ok", offset_min=0
    )
    await _write_run(
        conn, store, video_id="aaaaaaaaaaa", user_id=user.user_id, status="error", offset_min=1
    )
    await _write_run(conn, store, video_id=UPLOAD, user_id=None, status="ok", offset_min=2,
                     platform_id="upload")
    return user.user_id


UPLOAD = "up-0123456789abcdef"


async def test_rebuild_restores_the_index_row_for_row(db: Database, store: ResultStore) -> None:
    async with db.acquire() as conn:
        await _populate(conn, store)
        before = await _snapshot(conn)
        assert len(before["runs"]) == 3 and len(before["artifacts"]) == 9
        await conn.execute("TRUNCATE videos, runs, run_components, artifacts CASCADE")
        report = await rebuild_index(conn, store)
        assert report.ok and (report.runs, report.components, report.artifacts) == (3, 10, 9)
        assert report.runs_without_known_user == []
        assert await _snapshot(conn) == before
        video = await conn.fetchrow("SELECT title, source FROM videos WHERE video_id = $1", UPLOAD)
        assert video["title"] == "secret title" and video["source"]["kind"] == "upload"
        rebuilt = await _rows(conn)
        again = await rebuild_index(conn, store)  # rebuilding a complete index changes nothing
        assert again.ok and again.rows_written == 0 and await _rows(conn) == rebuilt


async def test_rebuild_reports_bad_manifests_and_unknown_users(
    db: Database, store: ResultStore
) -> None:
    async with db.acquire() as conn:
        user_id = await _populate(conn, store)
        await conn.execute("TRUNCATE videos, runs, run_components, artifacts CASCADE")
        await conn.execute("DELETE FROM users WHERE user_id = $1", user_id)
        broken = manifest_key("youtube", "ccccccccccc", str(uuid.uuid4()))
        await store.put_bytes(broken, b'{"run": {}}')
        report = await rebuild_index(conn, store)
        assert not report.ok and list(report.failures) == [broken]
        assert report.failures[broken].startswith("contract_violation")
        assert report.runs == 3 and len(report.runs_without_known_user) == 2
        owners = await conn.fetch("SELECT DISTINCT user_id FROM runs")
        assert [r["user_id"] for r in owners] == [None]


async def _stale(store: ResultStore, video_id: str, run_id: str) -> None:
    """Leave the run's manifest as an execution left it before its ending reached the store:
    ``running``, with ``motion`` still running."""
    key = manifest_key("youtube", video_id, run_id)
    manifest = await load_manifest(store, key)
    manifest.run.status, manifest.run.finished_at = "running", None
    manifest.components["motion"] = ComponentRecord(
        status="running", schema_version=1, producer_version="1.0",
        started_at=manifest.run.started_at)
    await save_manifest(store, manifest)


async def test_rebuild_over_the_live_index_changes_no_row(
    db: Database, store: ResultStore
) -> None:
    """The live index holds more than the manifests (the ending's own clock, the worker, the
    render row and its warning): a rebuild over it — or over a pg_dump copy — writes nothing."""
    async with db.acquire() as conn:
        await _populate(conn, store)
        await conn.execute(
            "UPDATE runs SET started_at = started_at + interval '1 ms', "
            "finished_at = finished_at + interval '3 ms', attempts = 1, worker_id = 'sched-1', "
            "heartbeat_at = now(), idempotency_key = 'k-' || run_id")
        ok_run = await conn.fetchval("SELECT run_id FROM runs WHERE status = 'ok' LIMIT 1")
        await comp_repo.upsert_run_component(
            conn, run_id=ok_run, component_name="render", status="error", required=False,
            error={"code": "llm_timeout", "message": "no answer"})
        await runs_repo.add_run_warning(conn, run_id=ok_run, warning="render failed: llm_timeout")
        before = await _rows(conn)
        report = await rebuild_index(conn, store)
        assert report.ok and report.runs == 3 and report.rows_written == 0
        assert report.runs_status_kept == {} and report.runs_restored_lost == []
        assert await _rows(conn) == before


async def test_rebuild_never_moves_a_run_backwards(db: Database, store: ResultStore) -> None:
    """A cancelled run whose manifest still says ``running`` stays cancelled (no scheduler
    start re-queues it, nothing is re-executed or charged); a re-queued run stays queued."""
    async with db.acquire() as conn:
        user_id = await _populate(conn, store)
        cancelled = await _write_run(conn, store, video_id="ccccccccccc", user_id=user_id,
                                     status="cancelled", offset_min=3)
        requeued = await _write_run(conn, store, video_id="ddddddddddd", user_id=user_id,
                                    status="queued", offset_min=4)
        for video_id, run_id in (("ccccccccccc", cancelled), ("ddddddddddd", requeued)):
            await _stale(store, video_id, run_id)
            # What the ending (a cancel puts open components back) or the watchdog wrote.
            await comp_repo.upsert_run_component(
                conn, run_id=uuid.UUID(run_id), component_name="motion", status="pending",
                schema_version=1, producer_version="1.0")
        before = await _rows(conn)

        report = await rebuild_index(conn, store)

        assert report.ok and report.runs == 5 and report.rows_written == 0
        assert report.runs_status_kept == {cancelled: "cancelled (manifest: running)",
                                           requeued: "queued (manifest: running)"}
        assert await _rows(conn) == before
        assert await runs_repo.requeue_interrupted(conn) == 0  # what a scheduler start does
        claimed = await runs_repo.claim_next_runs(conn, limit=10, worker_id="sched-1")
        assert [str(r.run_id) for r in claimed] == [requeued]


async def test_a_run_the_index_lost_is_restored_ended_never_queued(
    db: Database, store: ResultStore
) -> None:
    """A manifest that is not final, for a run the index does not know: its execution is gone,
    so the run comes back ended ``error``/``execution_lost``, open components closed."""
    async with db.acquire() as conn:
        user_id = await _populate(conn, store)
        run_id = await _write_run(conn, store, video_id="ccccccccccc", user_id=user_id,
                                  status="ok", offset_min=3)
        await _stale(store, "ccccccccccc", run_id)
        await conn.execute("TRUNCATE videos, runs, run_components, artifacts CASCADE")

        report = await rebuild_index(conn, store)

        assert report.ok and report.runs == 4 and report.runs_restored_lost == [run_id]
        run = await runs_repo.get_run(conn, run_id=uuid.UUID(run_id))
        assert (run.status, run.stage) == ("error", "error") and run.finished_at is not None
        assert run.error is not None and run.error["code"] == "execution_lost"
        assert run.error["details"]["manifest_status"] == "running"
        motion = await comp_repo.get_run_component(
            conn, run_id=uuid.UUID(run_id), component_name="motion")
        assert (motion.status, (motion.error or {}).get("code")) == ("error", ABORTED)
        assert await runs_repo.requeue_interrupted(conn) == 0
        assert await runs_repo.claim_next_runs(conn, limit=10, worker_id="sched-1") == []
        rebuilt = await _rows(conn)
        again = await rebuild_index(conn, store)
        assert again.rows_written == 0 and again.runs_restored_lost == []
        assert again.runs_status_kept == {run_id: "error (manifest: running)"}
        assert await _rows(conn) == rebuilt


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_cli_rebuild_from_the_configured_store(
    kind: str,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    store: ResultStore
    if kind == "local":
        store = LocalStore(tmp_path / "store")
        args = ["--store", "local", "--root", str(store.root)]
    else:
        target: S3Target = request.getfixturevalue("s3_bucket")
        store = s3_store(target)
        for name, value in (
            ("S3_ENDPOINT_URL", target.endpoint_url),
            ("S3_REGION", target.region),
            ("S3_BUCKET", target.bucket),
            ("S3_ACCESS_KEY_ID", target.access_key_id),
            ("S3_SECRET_ACCESS_KEY", target.secret_access_key),
        ):
            monkeypatch.setenv(f"TRENDFLOW_STORAGE__{name}", value)
        args = ["--store", "s3"]

    async def populate_and_clear() -> dict[str, list[asyncpg.Record]]:
        conn = await connect(db_url)
        try:
            await _populate(conn, store)
            before = await _snapshot(conn)
            await conn.execute("TRUNCATE videos, runs, run_components, artifacts CASCADE")
            return before
        finally:
            await conn.close()
            if isinstance(store, S3Store):
                await store.close()

    async def snapshot() -> dict[str, list[asyncpg.Record]]:
        conn = await connect(db_url)
        try:
            return await _snapshot(conn)
        finally:
            await conn.close()

    before = asyncio.run(populate_and_clear())
    monkeypatch.setenv("TRENDFLOW_DATABASE_URL", db_url)
    assert main(["index", "rebuild", *args]) == 0
    out = capsys.readouterr().out
    assert '"runs": 3' in out and '"failures": {}' in out
    if kind == "s3":
        assert f"s3://{target.bucket}" in out
    assert asyncio.run(snapshot()) == before
