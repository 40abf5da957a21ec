"""The Ray runtime's test bench: real Ray, real PostgreSQL, a real local result store.

``runtime`` gives settings pointing at a fresh migrated + seeded database and a temporary store,
a CPU-only test profile and helpers to queue runs and wait for them. ``start_scheduler`` starts
the named scheduler actor for a test and kills it (and its workers) at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from trendflow.contracts.keys import upload_key
from trendflow.db.pool import init_connection
from trendflow.db.repositories import profiles as profiles_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.db.seed.seed import apply_seed
from trendflow.media import synth
from trendflow.pipeline.types import VideoMeta
from trendflow.runs.enqueue import enqueue_run
from trendflow.runs.request import resolve_profile
from trendflow.runs.sources import upload_source
from trendflow.settings import RuntimeSettings, Settings
from trendflow.storage.factory import open_store

PROFILE_ID = "ray-test"
COMPONENTS = ("metadata_features", "shot_detection", "color_stats")


@dataclass
class Runtime:
    settings: Settings
    pool: asyncpg.Pool
    clip: synth.Clip
    upload: str  # store key of the clip

    async def upload_clip(self, clip: synth.Clip) -> str:
        """Put a clip into the store's uploads; returns its key."""
        key = upload_key(uuid.uuid4(), clip.path.name)
        await open_store(self.settings).put_file(key, clip.path)
        return key

    async def queue(self, n: int = 1, *, user_id: uuid.UUID | None = None,
                    profile_id: str = PROFILE_ID, upload: str | None = None) -> list[str]:
        """Queue ``n`` runs of the clip (distinct video ids) through the shared service."""
        ids = []
        async with self.pool.acquire() as conn:
            profile = await resolve_profile(conn, user_id=user_id, profile_id=profile_id)
            for _ in range(n):
                video_id = "up-" + uuid.uuid4().hex[:16]
                run, created = await enqueue_run(
                    conn,
                    user_id=user_id,
                    profile=profile,
                    platform_id="upload",
                    video_id=video_id,
                    source=upload_source(upload or self.upload, VideoMeta(title="bench clip")),
                )
                assert created
                ids.append(str(run.run_id))
        return ids

    async def runs(self, ids: list[str]) -> dict[str, runs_repo.Run]:
        async with self.pool.acquire() as conn:
            return {i: await runs_repo.get_run(conn, run_id=uuid.UUID(i)) for i in ids}

    async def wait(self, ids: list[str], timeout_s: float = 120.0,
                   until: Callable[[runs_repo.Run], bool] | None = None) -> dict[str, Any]:
        """Wait until every run is final (or ``until`` holds for each); returns the rows."""
        until = until or (lambda r: r.status in runs_repo.TERMINAL_STATUSES)
        deadline = time.monotonic() + timeout_s
        while True:
            rows = await self.runs(ids)
            if all(until(r) for r in rows.values()):
                return rows
            if time.monotonic() > deadline:
                states = {i: (r.status, r.stage) for i, r in rows.items()}
                raise AssertionError(f"runs did not finish in {timeout_s} s: {states}")
            await asyncio.sleep(0.2)


def named_actor(name: str, settings: Settings) -> Any:
    """A named actor of the runtime: in the runtime's namespace, or the scheduler's job's."""
    import ray

    for namespace in (settings.runtime.namespace, None):
        try:
            return ray.get_actor(name, namespace=namespace)
        except ValueError:
            continue
    raise AssertionError(f"no actor {name}")


def runtime_settings(tmp: Path, db_url: str, **runtime: Any) -> Settings:
    """Settings for a test cluster of 2 CPUs: small actors, short windows and backoffs."""
    rt = {
        "scheduler_name": f"tf-scheduler-{uuid.uuid4().hex[:8]}",
        "admission_window_s": 0.2,
        "poll_interval_s": 0.2,
        "segmenter_cpus": 0.25,
        "cpu_worker_cpus": 0.25,
        "cpu_workers": 2,
        "planning_cpus": 64.0,
        "retry_backoff_s": 0.2,
        "chunks_in_flight": 2,
        # Workers set up on their first run, as before warming existed: every test's scheduler
        # would otherwise start and warm a worker per model-backed component of the seeded
        # profiles. test_warm.py turns it on.
        "warm_workers": False,
        **runtime,
    }
    return Settings(
        env="test",
        data_dir=tmp / "data",
        database={"url": db_url},
        storage={"backend": "local", "local_root": tmp / "store"},
        runtime=RuntimeSettings(**rt),
    )


async def save_test_profile(
    conn: asyncpg.Connection, profile_id: str, params: dict[str, dict[str, Any]] | None = None,
    height: int = 96,
) -> None:
    """A CPU-only profile of :data:`COMPONENTS` (``params`` per component, if any)."""
    params = params or {}
    await profiles_repo.save_profile(
        conn,
        profile=profiles_repo.Profile(
            profile_id=profile_id,
            name="Ray runtime tests",
            sampling={"fps": 12.0, "height": height},
            render={"engine": "template"},
            components=tuple(
                profiles_repo.ProfileComponent(c, params=params.get(c, {})) for c in COMPONENTS
            ),
        ),
    )


@pytest.fixture(scope="session")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> synth.Clip:
    """A 40 s clip (tiny frames): enough chunks to interrupt a run in the middle."""
    path = tmp_path_factory.mktemp("long") / "long_cuts.mp4"
    return synth.scene_cuts(path, cuts_s=tuple(float(s) for s in range(5, 40, 5)),
                            duration_s=40.0, fps=12.0, size=(160, 96))


@pytest.fixture
async def runtime(
    ray_cluster: dict[str, object], db_url: str, tmp_path: Path, media: Any
) -> AsyncIterator[Runtime]:
    settings = runtime_settings(tmp_path, db_url)
    clip = media.clip("scene_cuts")
    store = open_store(settings)
    key = upload_key(uuid.uuid4(), clip.path.name)
    await store.put_file(key, clip.path)
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4, init=init_connection)
    async with pool.acquire() as conn:
        await apply_seed(conn)
        await save_test_profile(conn, PROFILE_ID)
    try:
        yield Runtime(settings=settings, pool=pool, clip=clip, upload=key)
    finally:
        await pool.close()


@pytest.fixture
def start_scheduler() -> Iterator[Callable[[Settings], Any]]:
    """Start the scheduler for a test; stopped and killed (with its workers) afterwards."""
    import ray

    from trendflow.actors.scheduler import start_scheduler as start

    handles: list[Any] = []

    def _start(settings: Settings) -> Any:
        handle = start(settings)
        handles.append(handle)
        return handle

    yield _start
    for handle in handles:
        # Already dead: killing below is all that is left to do.
        with contextlib.suppress(Exception):
            ray.get(handle.stop.remote(), timeout=30)
        ray.kill(handle, no_restart=True)
