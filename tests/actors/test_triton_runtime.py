"""Model-backed components through the Ray runtime, against the real Triton server."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import ray

from tests.actors.conftest import Runtime
from tests.fixtures.triton import TritonServer
from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.keys import artifact_key, manifest_key
from trendflow.contracts.manifest import load_manifest
from trendflow.contracts.npz import decode_npz
from trendflow.db.repositories import profiles as profiles_repo
from trendflow.pipeline.runner import run_local
from trendflow.pipeline.segmenter import UploadSource
from trendflow.pipeline.types import VideoMeta
from trendflow.settings import Settings
from trendflow.storage.factory import open_store
from trendflow.storage.local import LocalStore
from trendflow.triton.client import TritonClient
from trendflow.triton.server import free_port, start_server, stop_server

PROFILE_ID = "ray-triton-test"
MODELS = {"text_embeddings": ("text_embedder", "1"), "faces": ("face_detector", "1")}
COMPONENTS = ("metadata_features", *MODELS)


async def _save_profile(runtime: Runtime) -> profiles_repo.Profile:
    profile = profiles_repo.Profile(
        profile_id=PROFILE_ID,
        name="Ray runtime with Triton",
        sampling={"fps": 12.0, "height": 96},
        render={"engine": "template"},
        components=tuple(
            profiles_repo.ProfileComponent(
                name,
                models=(
                    (profiles_repo.ModelMapping(*MODELS[name]),) if name in MODELS else ()
                ),
            )
            for name in COMPONENTS
        ),
    )
    async with runtime.pool.acquire() as conn:
        await profiles_repo.save_profile(conn, profile=profile)
        return await profiles_repo.get_profile(conn, profile_id=PROFILE_ID)


def _with_triton(settings: Settings, url: str, **runtime: Any) -> Settings:
    return settings.model_copy(
        update={
            "triton": settings.triton.model_copy(
                update={"url": url, "protocol": "grpc", "backoff_s": 0.2}
            ),
            "runtime": settings.runtime.model_copy(update=runtime),
        }
    )


async def _arrays(store: Any, platform: str, video: str, run_id: str) -> dict[str, dict]:
    out = {}
    for name in COMPONENTS:
        key = artifact_key(platform, video, run_id, name)
        out[name] = decode_npz(await store.get_bytes(key), where=key).arrays
    return out


async def test_model_components_through_ray_match_the_local_runner(
    runtime: Runtime, start_scheduler, triton_server: TritonServer, media: Any, tmp_path: Path
) -> None:
    """The GPU actor merges the faces requests of both chunks of the clip (a long batch wait
    makes sure they meet); every array is still exactly the local runner's."""
    profile = await _save_profile(runtime)
    face = media.clip("face")  # 6 s: two chunks, 8 + 4 frames at 2 fps, one detector batch
    upload = await runtime.upload_clip(face)
    settings = _with_triton(
        runtime.settings, triton_server.info.grpc_url, gpu_batch_wait_ms=500.0
    )
    sched = start_scheduler(settings)
    [run_id] = await runtime.queue(1, profile_id=PROFILE_ID, upload=upload)
    run = (await runtime.wait([run_id], timeout_s=180))[run_id]
    assert run.status == "ok", run.error
    [faces_actor] = [n for n in ray.get(sched.describe.remote())["actors"]["gpu"]
                     if n.startswith("trendflow-gpu-faces-")]
    stats = ray.get(ray.get_actor(faces_actor)
                    .batch_stats.remote())
    assert stats["requests"] == 2 and stats["calls"] == 1 and stats["merged_calls"] == 1, stats

    store = open_store(settings)
    manifest = await load_manifest(store, manifest_key(run.platform_id, run.video_id, run_id))
    assert {n: r.status for n, r in manifest.components.items()} == dict.fromkeys(
        COMPONENTS, "ok"
    )
    for name, (model, version) in MODELS.items():
        assert manifest.components[name].model.startswith(f"{model}:{version}")
    ray_arrays = await _arrays(store, run.platform_id, run.video_id, run_id)

    local_store = LocalStore(tmp_path / "local-store")
    identity = RunIdentity.create(
        platform_id="upload", video_id=run.video_id, config_hash=run.config_hash
    )
    local = await run_local(
        identity,
        profile.config(),
        UploadSource(path=face.path, meta=VideoMeta(title="bench clip")),
        local_store,
        tmp_path / "local-work",
        settings=settings,
        model_mapping=profile.pinned_models(),
        services={"triton": TritonClient(triton_server.info.grpc_url, protocol="grpc")},
    )
    assert local.run.status == "ok"
    local_arrays = await _arrays(local_store, "upload", run.video_id, identity.run_id)
    assert int(ray_arrays["faces"]["face_count"].max()) >= 1
    for name in COMPONENTS:
        assert sorted(ray_arrays[name]) == sorted(local_arrays[name]), name
        for key, arr in local_arrays[name].items():
            np.testing.assert_array_equal(ray_arrays[name][key], arr, err_msg=f"{name}.{key}")


async def test_a_triton_outage_is_retried_and_the_run_finishes_when_it_is_back(
    runtime: Runtime, start_scheduler, triton_server: TritonServer, tmp_path: Path
) -> None:
    await _save_profile(runtime)
    ports = {"http_port": free_port(), "grpc_port": free_port(), "metrics_port": free_port()}
    work = tmp_path / "triton"
    work.mkdir()
    settings = _with_triton(
        runtime.settings,
        f"127.0.0.1:{ports['grpc_port']}",
        retry_attempts=6,
        retry_backoff_s=1.0,
        retry_backoff_max_s=8.0,
    )
    # The server is down when the run starts, and comes back a few seconds later.
    start_scheduler(settings)
    [run_id] = await runtime.queue(1, profile_id=PROFILE_ID)
    await runtime.wait([run_id], timeout_s=60, until=lambda r: r.status == "running")
    await asyncio.sleep(2.0)
    started = threading.Event()

    def _start() -> None:
        start_server(triton_server.repository, work, **ports)
        started.set()

    thread = threading.Thread(target=_start, daemon=True)
    thread.start()
    try:
        run = (await runtime.wait([run_id], timeout_s=240))[run_id]
    finally:
        thread.join(timeout=200)
        stop_server(work)
    assert started.is_set()
    assert run.status == "ok", run.error
