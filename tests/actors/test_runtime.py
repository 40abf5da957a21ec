"""The Ray runtime end to end: real local Ray, real PostgreSQL, a real local store."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.actors.conftest import COMPONENTS, Runtime
from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.keys import artifact_key, manifest_key
from trendflow.contracts.manifest import load_manifest
from trendflow.contracts.npz import decode_npz
from trendflow.db.repositories import components as rc_repo
from trendflow.db.repositories import profiles as profiles_repo
from trendflow.pipeline.frames_archive import read_archive
from trendflow.pipeline.runner import run_local
from trendflow.pipeline.segmenter import UploadSource
from trendflow.pipeline.types import VideoMeta
from trendflow.storage.factory import open_store
from trendflow.storage.local import LocalStore


async def _arrays(store, platform: str, video: str, run_id: str) -> dict[str, dict]:
    out = {}
    for name in COMPONENTS:
        key = artifact_key(platform, video, run_id, name)
        out[name] = decode_npz(await store.get_bytes(key), where=key).arrays
    return out


async def test_ray_runtime_writes_the_same_arrays_as_the_local_runner(
    runtime: Runtime, start_scheduler, tmp_path: Path
) -> None:
    start_scheduler(runtime.settings)
    [run_id] = await runtime.queue(1)
    rows = await runtime.wait([run_id])
    run = rows[run_id]
    assert run.status == "ok", run.error

    store = open_store(runtime.settings)
    manifest = await load_manifest(store, manifest_key(run.platform_id, run.video_id, run_id))
    assert manifest.run.status == "ok"
    assert {n: r.status for n, r in manifest.components.items()} == dict.fromkeys(COMPONENTS, "ok")
    assert all(r.device_used == "cpu" and r.peak_ram_mb for r in manifest.components.values())
    async with runtime.pool.acquire() as conn:
        db_components = await rc_repo.list_run_components(conn, run_id=run.run_id)
        profile = await profiles_repo.get_profile(conn, profile_id=run.profile_id)
    assert {c.component_name: c.status for c in db_components} == dict.fromkeys(COMPONENTS, "ok")
    ray_arrays = await _arrays(store, run.platform_id, run.video_id, run_id)

    local_store = LocalStore(tmp_path / "local-store")
    identity = RunIdentity.create(
        platform_id="upload", video_id=run.video_id, config_hash=run.config_hash
    )
    local = await run_local(
        identity,
        profile.config(),
        UploadSource(path=runtime.clip.path, meta=VideoMeta(title="bench clip")),
        local_store,
        tmp_path / "local-work",
        settings=runtime.settings,
    )
    assert local.run.status == "ok"
    local_arrays = await _arrays(local_store, "upload", run.video_id, identity.run_id)
    for name in COMPONENTS:
        assert sorted(ray_arrays[name]) == sorted(local_arrays[name]), name
        for key, arr in local_arrays[name].items():
            np.testing.assert_array_equal(ray_arrays[name][key], arr, err_msg=f"{name}.{key}")
    # Both runtimes keep the same decoded frames under frames/<run_id>/.
    ray_frames = await read_archive(store, run_id)
    local_frames = await read_archive(local_store, identity.run_id)
    assert len(ray_frames) == len(local_frames) > 0
    for got, want in zip(ray_frames, local_frames, strict=True):
        np.testing.assert_array_equal(got.frame_indices, want.frame_indices)


async def test_runs_from_several_users_drain_each_exactly_once_in_fifo_order(
    runtime: Runtime, start_scheduler
) -> None:
    n_runs, n_users = 50, 5  # the scale the runtime is specified for
    from trendflow.db.repositories import users as users_repo

    async with runtime.pool.acquire() as conn:
        users = [
            (await users_repo.create_user(conn, email=f"user{i}@example.com")).user_id
            for i in range(n_users)
        ]
    ids: list[str] = []
    for i in range(n_runs):  # the users take turns, as arrivals interleave
        ids += await runtime.queue(1, user_id=users[i % n_users])
    start_scheduler(runtime.settings.model_copy(
        update={"runtime": runtime.settings.runtime.model_copy(update={"max_concurrent_runs": 3})}
    ))
    rows = await runtime.wait(ids, timeout_s=30.0 * n_runs)
    assert {r.status for r in rows.values()} == {"ok"}
    assert all(r.attempts == 1 for r in rows.values())  # claimed once, never re-run
    by_creation = sorted(rows.values(), key=lambda r: (r.created_at, r.run_id))
    starts = [r.started_at for r in by_creation]
    assert starts == sorted(starts)  # FIFO: an older run never starts after a newer one
    store = open_store(runtime.settings)
    for run in rows.values():
        manifest = await load_manifest(store, manifest_key(run.platform_id, run.video_id,
                                                           str(run.run_id)))
        assert manifest.run.status == "ok"
        assert [len(r.artifacts) for r in manifest.components.values()] == [1] * len(COMPONENTS)
