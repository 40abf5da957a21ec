"""Ray runtime benchmark: overhead vs the local runner, throughput under load, idle latency.

Everything real and on loopback: a local Ray cluster, an embedded PostgreSQL, a local store, a
generated clip. Prints three figures, each against a baseline measured in the same run:

1. one run through the Ray runtime vs :func:`run_local` on the same clip (target ratio ≤ 1.15);
2. N runs queued together vs the same N one after another (target speed-up ≥ 1.0), with the
   peak RSS of the cluster's processes;
3. idle latency from ``queued`` to the Segmenter starting, minus the admission window
   (target ≤ 100 ms).

    .venv/bin/python benchmarks/bench_runtime.py --clip-seconds 60 --runs 8
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psutil

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import asyncpg  # noqa: E402
import ray  # noqa: E402

from trendflow.actors.scheduler import start_scheduler  # noqa: E402
from trendflow.contracts.identity import RunIdentity  # noqa: E402
from trendflow.contracts.keys import upload_key  # noqa: E402
from trendflow.db.embedded import EmbeddedServer  # noqa: E402
from trendflow.db.migrate import apply_migrations  # noqa: E402
from trendflow.db.pool import ensure_database, init_connection  # noqa: E402
from trendflow.db.repositories import profiles as profiles_repo  # noqa: E402
from trendflow.db.repositories import runs as runs_repo  # noqa: E402
from trendflow.db.seed.seed import apply_seed  # noqa: E402
from trendflow.media import synth  # noqa: E402
from trendflow.pipeline.components.registry import component_names, get_component  # noqa: E402
from trendflow.pipeline.runner import run_local  # noqa: E402
from trendflow.pipeline.segmenter import UploadSource  # noqa: E402
from trendflow.pipeline.types import VideoMeta  # noqa: E402
from trendflow.runs.enqueue import enqueue_run  # noqa: E402
from trendflow.runs.request import resolve_profile  # noqa: E402
from trendflow.runs.sources import upload_source  # noqa: E402
from trendflow.settings import RuntimeSettings, Settings  # noqa: E402
from trendflow.storage.factory import open_store  # noqa: E402
from trendflow.storage.local import LocalStore  # noqa: E402

PROFILE = "bench-runtime"


def cpu_components() -> list[str]:
    """The catalog's CPU components whose modules are present in this build."""
    names = []
    for name in component_names():
        try:
            cls = get_component(name)
        except ImportError:
            continue
        if cls.RESOURCES.gpu_memory_mb == 0 and cls.MODEL is None:
            names.append(name)
    return names


async def wait_final(pool: asyncpg.Pool, ids: list[str], timeout_s: float = 1800) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        async with pool.acquire() as conn:
            rows = [await runs_repo.get_run(conn, run_id=uuid.UUID(i)) for i in ids]
        if all(r.status in runs_repo.TERMINAL_STATUSES for r in rows):
            bad = [(str(r.run_id), r.status, r.error) for r in rows if r.status != "ok"]
            if bad:
                raise SystemExit(f"runs failed: {bad}")
            return
        if time.monotonic() > deadline:
            raise SystemExit("runs did not finish in time")
        await asyncio.sleep(0.05)


def cluster_rss_mb() -> float:
    me = psutil.Process()
    procs = [me, *me.children(recursive=True)]
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="tfbench-", dir="/tmp"))
    server = EmbeddedServer.acquire(root / "pg")
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
             _temp_dir=str(root / "ray"), log_to_driver=False,
             _system_config={"free_objects_period_milliseconds": 50})
    try:
        await ensure_database(server.uri("postgres"), "bench")
        url = server.uri("bench")
        pool = await asyncpg.create_pool(url, min_size=1, max_size=4, init=init_connection)
        components = cpu_components()
        async with pool.acquire() as conn:
            await apply_migrations(conn)
            await apply_seed(conn)
            await profiles_repo.save_profile(conn, profile=profiles_repo.Profile(
                profile_id=PROFILE, name="runtime benchmark",
                sampling={"fps": 12.0, "height": 320}, render={"engine": "template"},
                components=tuple(profiles_repo.ProfileComponent(c) for c in components),
            ))
            profile = await profiles_repo.get_profile(conn, profile_id=PROFILE)
        settings = Settings(
            env="dev", data_dir=root / "data", database={"url": url},
            storage={"backend": "local", "local_root": root / "store"},
            runtime=RuntimeSettings(
                scheduler_name="bench-scheduler", admission_window_s=args.window,
                poll_interval_s=0.05, max_concurrent_runs=args.runs, planning_cpus=1e6,
                segmenter_cpus=0.5, cpu_worker_cpus=0.5, cpu_workers=2,
            ),
        )
        print(f"clip: {args.clip_seconds:g} s scene cuts 640x360 @24 fps; components: "
              f"{', '.join(components)}; window {args.window:g} s; {os.cpu_count()} cores")
        clip = synth.scene_cuts(root / "clip.mp4", cuts_s=tuple(
            float(s) for s in range(3, int(args.clip_seconds), 3)),
            duration_s=args.clip_seconds, fps=24.0, size=(640, 360))
        store = open_store(settings)
        key = upload_key(uuid.uuid4(), clip.path.name)
        await store.put_file(key, clip.path)

        async def queue(n: int) -> list[str]:
            ids = []
            async with pool.acquire() as conn:
                for _ in range(n):
                    resolved = await resolve_profile(conn, user_id=None, profile_id=PROFILE)
                    run, _ = await enqueue_run(
                        conn, user_id=None, profile=resolved, platform_id="upload",
                        video_id="up-" + uuid.uuid4().hex[:16],
                        source=upload_source(key, VideoMeta(title="bench")),
                    )
                    ids.append(str(run.run_id))
            return ids

        # 1. overhead: local runner vs Ray runtime, same clip, same profile
        t = time.perf_counter()
        identity = RunIdentity.create(platform_id="upload", video_id="up-" + "0" * 16,
                                      config_hash="0" * 64)
        await run_local(identity, profile.config(),
                        UploadSource(path=clip.path, meta=VideoMeta(title="bench")),
                        LocalStore(root / "local"), root / "local-work", settings=settings)
        local_s = time.perf_counter() - t
        sched = start_scheduler(settings)
        ray.get(sched.wake.remote())
        [warm] = await queue(1)  # workers import and set up once
        await wait_final(pool, [warm])
        [run_id] = await queue(1)
        t = time.perf_counter()
        await wait_final(pool, [run_id])
        ray_s = time.perf_counter() - t - args.window
        print(f"1. one run: local {local_s:.2f} s, Ray {ray_s:.2f} s (minus the window) "
              f"-> ratio {ray_s / local_s:.2f} (target <= 1.15)")

        # 2. throughput: N sequential vs N queued together
        t = time.perf_counter()
        for _ in range(args.runs):
            await wait_final(pool, await queue(1))
        seq_s = time.perf_counter() - t
        peak = [cluster_rss_mb()]

        async def sample() -> None:
            while True:
                peak.append(cluster_rss_mb())
                await asyncio.sleep(0.2)

        sampler = asyncio.create_task(sample())
        t = time.perf_counter()
        await wait_final(pool, await queue(args.runs))
        conc_s = time.perf_counter() - t
        sampler.cancel()
        print(f"2. {args.runs} runs: sequential {seq_s:.2f} s, concurrent {conc_s:.2f} s "
              f"-> speed-up {seq_s / conc_s:.2f} (target >= 1.0); peak RSS of driver + "
              f"cluster {max(peak):.0f} MB")

        # 3. idle latency queued -> Segmenter start, minus the admission window
        lat = []
        for _ in range(args.latency_samples):
            [rid] = await queue(1)
            await wait_final(pool, [rid])
            async with pool.acquire() as conn:
                created = (await runs_repo.get_run(conn, run_id=uuid.UUID(rid))).created_at
            started = ray.get(sched.segment_started_at.remote(rid))
            lat.append((started - created.timestamp() - args.window) * 1000)
        print(f"3. queued -> Segmenter start minus window: median {statistics.median(lat):.0f} "
              f"ms, max {max(lat):.0f} ms over {len(lat)} runs (target <= 100 ms)")
        ray.get(sched.stop.remote())
        ray.kill(sched, no_restart=True)
        await pool.close()
    finally:
        ray.shutdown()
        server.release()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip-seconds", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--window", type=float, default=1.0, help="admission window, s")
    parser.add_argument("--latency-samples", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
