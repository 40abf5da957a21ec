"""Faults: lost workers, a lost scheduler, logic errors, cancellation."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray

from tests.actors.conftest import COMPONENTS, Runtime, named_actor
from trendflow.contracts.keys import artifact_key, manifest_key
from trendflow.contracts.manifest import load_manifest
from trendflow.contracts.npz import decode_npz
from trendflow.db.repositories import profiles as profiles_repo
from trendflow.settings import Settings
from trendflow.storage.factory import open_store


def _with(settings: Settings, **runtime: Any) -> Settings:
    return settings.model_copy(update={"runtime": settings.runtime.model_copy(update=runtime)})




async def _outputs(runtime: Runtime, run_id: str) -> dict[str, dict[str, np.ndarray]]:
    [run] = (await runtime.runs([run_id])).values()
    store = open_store(runtime.settings)
    out = {}
    for name in COMPONENTS:
        key = artifact_key(run.platform_id, run.video_id, run_id, name)
        out[name] = decode_npz(await store.get_bytes(key), where=key).arrays
    return out


async def _analysing(runtime: Runtime, ids: list[str]) -> None:
    await runtime.wait(ids, timeout_s=60, until=lambda r: (r.stage or "").startswith("analysing")
                       or r.status != "queued" and r.status != "running")


async def test_killing_a_component_worker_mid_run_changes_nothing_in_the_outputs(
    runtime: Runtime, start_scheduler, long_clip
) -> None:
    settings = _with(runtime.settings, chunks_in_flight=1)
    sched = start_scheduler(settings)
    upload = await runtime.upload_clip(long_clip)
    [reference] = await runtime.queue(1, upload=upload)
    assert (await runtime.wait([reference]))[reference].status == "ok"

    [run_id] = await runtime.queue(1, upload=upload)
    await _analysing(runtime, [run_id])
    names = ray.get(sched.describe.remote())["actors"]["cpu"]
    workers = [named_actor(n, settings) for n in names]
    pids = ray.get([w.pid.remote() for w in workers])
    os.kill(pids[0], signal.SIGKILL)  # a crash, not a polite stop
    row = (await runtime.wait([run_id]))[run_id]
    assert row.status == "ok", row.error
    assert ray.get(workers[0].pid.remote()) != pids[0]  # Ray restarted the worker
    got, want = await _outputs(runtime, run_id), await _outputs(runtime, reference)
    for name in COMPONENTS:
        for key, arr in want[name].items():
            np.testing.assert_array_equal(got[name][key], arr, err_msg=f"{name}.{key}")


async def test_a_killed_scheduler_comes_back_and_finishes_every_run_once(
    runtime: Runtime, start_scheduler, long_clip
) -> None:
    settings = _with(runtime.settings, chunks_in_flight=1, max_concurrent_runs=2)
    sched = start_scheduler(settings)
    upload = await runtime.upload_clip(long_clip)
    ids = await runtime.queue(4, upload=upload)
    await _analysing(runtime, ids[:1])
    before = ray.get(sched.describe.remote())["incarnation"]
    killed_at = time.time()
    ray.kill(sched, no_restart=False)
    rows = await runtime.wait(ids, timeout_s=240)
    assert {r.status for r in rows.values()} == {"ok"}
    assert ray.get(sched.describe.remote())["incarnation"] != before
    assert max(r.attempts for r in rows.values()) == 2  # interrupted runs were claimed again
    store = open_store(runtime.settings)
    for run_id, row in rows.items():
        manifest = await load_manifest(
            store, manifest_key(row.platform_id, row.video_id, run_id)
        )
        assert manifest.run.status == "ok"
        assert all(r.status == "ok" and len(r.artifacts) == 1
                   for r in manifest.components.values())
        # A component finished before the kill kept its result: it was not computed twice.
        assert all(r.finished_at.timestamp() < killed_at or r.started_at.timestamp() > killed_at
                   for r in manifest.components.values())


async def test_a_logic_error_fails_the_run_at_once_without_retries(
    runtime: Runtime, start_scheduler
) -> None:
    # `faces` with no model pinned: only the worker finds it, when it sets the component up
    # (model_not_found, a permanent error).
    async with runtime.pool.acquire() as conn:
        await profiles_repo.save_profile(conn, profile=profiles_repo.Profile(
            profile_id="ray-bad", name="no model", sampling={"fps": 12.0, "height": 96},
            render={"engine": "template"},
            components=(profiles_repo.ProfileComponent("color_stats"),
                        profiles_repo.ProfileComponent("faces")),
        ))
    # A retry would wait 60 s first: the run must fail long before that.
    start_scheduler(_with(runtime.settings, retry_backoff_s=60.0))
    [run_id] = await runtime.queue(1, profile_id="ray-bad")
    row = (await runtime.wait([run_id], timeout_s=40))[run_id]
    assert row.status == "error"
    assert row.error["code"] == "model_not_found"
    assert row.attempts == 1
    manifest = await load_manifest(
        open_store(runtime.settings), manifest_key(row.platform_id, row.video_id, run_id)
    )
    assert manifest.run.error.code == "model_not_found"
    assert manifest.components["faces"].error.code == "model_not_found"
    assert manifest.components["color_stats"].error.code == "run_aborted"


async def test_cancelling_a_running_run_stops_it_and_keeps_the_manifest(
    runtime: Runtime, start_scheduler, long_clip
) -> None:
    # One run at a time: the second stays queued (two admitted together would race for the
    # one Segmenter, and the second could finish before it is cancelled).
    sched = start_scheduler(_with(runtime.settings, chunks_in_flight=1, max_concurrent_runs=1))
    upload = await runtime.upload_clip(long_clip)
    [run_id, queued] = await runtime.queue(2, upload=upload)
    await _analysing(runtime, [run_id])
    assert ray.get(sched.cancel.remote(run_id)) == "cancelled"
    assert ray.get(sched.cancel.remote(queued)) == "cancelled"
    rows = await runtime.wait([run_id, queued])
    assert [rows[run_id].status, rows[queued].status] == ["cancelled", "cancelled"]
    manifest = await load_manifest(
        open_store(runtime.settings),
        manifest_key(rows[run_id].platform_id, rows[run_id].video_id, run_id),
    )
    assert manifest.run.status == "cancelled"
    assert all(r.status in ("ok", "empty", "pending") for r in manifest.components.values())
    # The scheduler lets go of both runs (it may still be unwinding the first one's stream).
    for _ in range(100):
        active = ray.get(sched.describe.remote())["active_runs"]
        if not active:
            break
        await asyncio.sleep(0.1)
    assert active == []


async def test_a_segmenter_killed_mid_decode_is_prepared_again_and_the_run_resumes(
    runtime: Runtime, start_scheduler, long_clip, ray_cluster: dict[str, object]
) -> None:
    settings = _with(runtime.settings, chunks_in_flight=1)
    sched = start_scheduler(settings)
    upload = await runtime.upload_clip(long_clip)
    [reference] = await runtime.queue(1, upload=upload)
    assert (await runtime.wait([reference]))[reference].status == "ok"
    [name] = ray.get(sched.describe.remote())["actors"]["segmenter"]
    segmenter = named_actor(name, settings)
    pid = ray.get(segmenter.pid.remote())  # asked while idle: a decoding actor answers late

    [run_id] = await runtime.queue(1, upload=upload)
    await _analysing(runtime, [run_id])
    row = (await runtime.runs([run_id]))[run_id]
    key = manifest_key(row.platform_id, row.video_id, run_id)
    store = open_store(runtime.settings)
    # The frame stream is still being decoded and mapped: no frame-based component is reduced
    # yet (metadata_features reads no frames and finishes before the first chunk).
    framed = {"shot_detection", "color_stats"}
    statuses = {n: r.status for n, r in (await load_manifest(store, key)).components.items()}
    assert {statuses[n] for n in framed} == {"running"}, statuses
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)
    row = (await runtime.wait([run_id]))[run_id]
    assert row.status == "ok", row.error
    assert row.attempts == 1  # resumed inside the run, not requeued
    assert ray.get(segmenter.pid.remote()) != pid  # Ray restarted the Segmenter
    got, want = await _outputs(runtime, run_id), await _outputs(runtime, reference)
    for component in COMPONENTS:
        assert sorted(got[component]) == sorted(want[component]), component
        for array, expected in want[component].items():
            np.testing.assert_array_equal(
                got[component][array], expected, err_msg=f"{component}.{array}"
            )
    # The kill broke the chunk stream (not a run that had finished decoding): the scheduler
    # logged that it prepared the video again.
    logs = Path(str(ray_cluster["temp_dir"])).glob("session_*/logs/*.err")
    assert any(f"the Segmenter lost run {run_id}" in p.read_text(errors="replace") for p in logs)
    manifest = await load_manifest(store, key)
    assert manifest.run.status == "ok" and not manifest.run.warnings
    # Each component ran once, one artifact; the frame-based ones started before the kill and
    # finished after it.
    for component, rec in manifest.components.items():
        assert rec.status == "ok" and len(rec.artifacts) == 1, component
        if component in framed:
            assert rec.started_at.timestamp() < killed_at < rec.finished_at.timestamp()
