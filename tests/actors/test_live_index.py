"""The index a real run leaves (real Ray, real PostgreSQL, the real local store) is the one its
manifest restores: the video's row holds the probed facts, and a rebuild writes nothing."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.actors.conftest import Runtime
from trendflow.contracts.keys import manifest_key
from trendflow.contracts.manifest import load_manifest
from trendflow.db.rebuild import rebuild_index
from trendflow.db.repositories import videos as videos_repo
from trendflow.storage.factory import open_store

INDEX = ("videos", "runs", "run_components", "artifacts")
# Columns a rebuild into an empty index cannot know (docs/database.md, "Rebuilding the index").
NOT_IN_MANIFESTS = {
    "videos": {"updated_at"},
    "runs": {"updated_at", "worker_id", "attempts", "heartbeat_at", "priced_video",
             "started_at", "finished_at"},  # the index's clock; the manifest has its own
    "run_components": {"updated_at"},
    "artifacts": {"created_at"},
}


async def _rows(conn: asyncpg.Connection) -> dict[str, list[dict[str, Any]]]:
    return {t: [dict(r) for r in await conn.fetch(f"SELECT * FROM {t} ORDER BY 1, 2")]
            for t in INDEX}


async def test_a_real_run_leaves_the_video_row_a_rebuild_restores_and_keeps(
    runtime: Runtime, start_scheduler: Any
) -> None:
    start_scheduler(runtime.settings)
    [run_id] = await runtime.queue(1)
    run = (await runtime.wait([run_id]))[run_id]
    assert run.status == "ok", run.error
    store = open_store(runtime.settings)
    manifest = await load_manifest(store, manifest_key(run.platform_id, run.video_id, run_id))
    assert manifest.video is not None
    assert (manifest.run.profile_config, manifest.run.source) == (run.profile_config, run.source)

    async with runtime.pool.acquire() as conn:
        video = await videos_repo.get_video(conn, platform_id=run.platform_id,
                                            video_id=run.video_id)
        probed = manifest.video
        assert (video.duration_s, video.fps, video.width, video.height, video.has_audio) == (
            probed.duration_s, probed.fps, probed.width, probed.height, probed.has_audio)
        assert video.duration_s > 0 and video.title == "bench clip"
        assert video.source == run.source

        live = await _rows(conn)
        report = await rebuild_index(conn, store)
        assert report.ok and report.runs == 1 and report.rows_written == 0
        assert await _rows(conn) == live  # over the live index: nothing changes

        await conn.execute("TRUNCATE videos, runs, run_components, artifacts CASCADE")
        report = await rebuild_index(conn, store)
        assert report.ok and report.runs == 1 and report.runs_restored_lost == []
        rebuilt = await _rows(conn)

    def restorable(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        return {t: [{c: v for c, v in r.items() if c not in NOT_IN_MANIFESTS[t]} for r in rs]
                for t, rs in rows.items()}

    assert restorable(rebuilt) == restorable(live)  # into an empty index: the same rows
