"""The built-in profiles as shipped in the seed: valid, mapped to models that exist, and `full`
runs end to end on the real Triton server."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from tests.fixtures.media import MediaLibrary
from tests.fixtures.triton import SOURCE_REPO, TritonServer
from trendflow.contracts.identity import RunIdentity, upload_video_id
from trendflow.contracts.profile import config_hash
from trendflow.contracts.validate import validate_run
from trendflow.db.repositories import profiles as profiles_repo
from trendflow.db.seed.seed import apply_seed
from trendflow.pipeline.components import get_component
from trendflow.pipeline.runner import run_local
from trendflow.pipeline.segmenter import UploadSource
from trendflow.pipeline.types import VideoMeta
from trendflow.settings import Settings
from trendflow.storage.keys import run_prefix
from trendflow.storage.local import LocalStore

BUILTIN = ("fast", "full", "prediction")
# Mapped in the `prediction` profile, produced by `trendflow train-predictor` (not built yet).
NOT_YET_BUILT = {"popularity_predictor:1"}


async def _profiles(conn: asyncpg.Connection) -> dict[str, profiles_repo.Profile]:
    await apply_seed(conn)
    return {p: await profiles_repo.get_profile(conn, profile_id=p) for p in BUILTIN}


async def test_every_builtin_profile_is_valid_and_maps_models_the_repository_has(
    conn: asyncpg.Connection,
) -> None:
    missing: set[str] = set()
    for profile in (await _profiles(conn)).values():
        profile.config()  # raises invalid_profile on anything the contract refuses
        for name, ref in profile.pinned_models().items():
            version_dir = SOURCE_REPO / ref.name / ref.version
            if not ((SOURCE_REPO / ref.name / "config.pbtxt").is_file() and version_dir.is_dir()):
                missing.add(f"{ref.name}:{ref.version}")
            else:
                assert get_component(name).USES_MODEL_SERVER, name
    assert missing == NOT_YET_BUILT


async def test_the_full_profile_runs_on_triton_and_validates(
    conn: asyncpg.Connection, triton_server: TritonServer, media: MediaLibrary, tmp_path: Path
) -> None:
    full = (await _profiles(conn))["full"]
    config = full.config()
    clip = media.clip("face")
    identity = RunIdentity.create(
        platform_id="upload", video_id=upload_video_id(clip.path), config_hash=config_hash(config)
    )
    store = LocalStore(tmp_path / "store")
    settings = Settings(data_dir=tmp_path / "data")
    manifest = await run_local(
        identity,
        config,
        UploadSource(clip.path, VideoMeta(title="A face", description="Say hello")),
        store,
        tmp_path / "work",
        settings=settings,
        model_mapping=full.pinned_models(),
        services={"triton": triton_server.client()},
    )
    statuses = {n: (r.status, r.error) for n, r in manifest.components.items()}
    assert manifest.run.status == "ok", statuses
    assert manifest.run.warnings == [], manifest.run.warnings
    assert all(s in ("ok", "empty") for s, _ in statuses.values()), statuses
    assert manifest.components["faces"].status == "ok"
    run = run_prefix(identity.platform_id, identity.video_id, identity.run_id)
    assert await validate_run(store, run) == []
