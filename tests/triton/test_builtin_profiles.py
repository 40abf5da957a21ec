"""The built-in profiles as shipped in the seed: valid, mapped to models that exist, and `full`
and `prediction` run end to end on the real Triton server."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import asyncpg
import numpy as np

from tests.fixtures.media import MediaLibrary
from tests.fixtures.triton import SOURCE_REPO, TritonServer
from trendflow.api.client import AnalysisResult, print_summary
from trendflow.contracts.identity import RunIdentity, upload_video_id
from trendflow.contracts.keys import artifact_key, run_prefix
from trendflow.contracts.npz import decode_npz
from trendflow.contracts.profile import config_hash
from trendflow.contracts.validate import validate_run
from trendflow.db.repositories import profiles as profiles_repo
from trendflow.db.seed.seed import apply_seed
from trendflow.forecast.featurize import METADATA_ONLY_COMPONENTS, metadata_components
from trendflow.forecast.present import forecast_json, short_count
from trendflow.forecast.tier0 import TIER0_FEATURES, tier0_vector
from trendflow.pipeline.components import get_component
from trendflow.pipeline.runner import run_local
from trendflow.pipeline.segmenter import UploadSource
from trendflow.pipeline.types import VideoMeta
from trendflow.settings import Settings
from trendflow.storage.local import LocalStore

BUILTIN = ("fast", "full", "prediction")
# Format facts a metadata-only labelled row cannot know (the served run probed a file).
PROBED_KEYS = {"duration_s", "width", "height", "aspect_ratio", "is_vertical", "fps",
               "has_audio"}


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
    assert missing == set()


async def _run_on_triton(
    profile: profiles_repo.Profile, meta: VideoMeta, triton_server: TritonServer,
    media: MediaLibrary, tmp_path: Path,
) -> tuple[RunIdentity, LocalStore, dict[str, tuple[str, object]]]:
    """One local run of the seeded ``profile`` on the face clip; asserts it ends ``ok`` and
    validates."""
    config = profile.config()
    clip = media.clip("face")
    identity = RunIdentity.create(
        platform_id="upload", video_id=upload_video_id(clip.path), config_hash=config_hash(config)
    )
    store = LocalStore(tmp_path / "store")
    manifest = await run_local(
        identity, config, UploadSource(clip.path, meta), store, tmp_path / "work",
        settings=Settings(data_dir=tmp_path / "data"),
        model_mapping=profile.pinned_models(),
        services={"triton": triton_server.client()},
    )
    statuses = {n: (r.status, r.error) for n, r in manifest.components.items()}
    assert manifest.run.status == "ok", statuses
    assert manifest.run.warnings == [], manifest.run.warnings
    assert all(s in ("ok", "empty") for s, _ in statuses.values()), statuses
    assert manifest.components["faces"].status == "ok"
    run = run_prefix(identity.platform_id, identity.video_id, identity.run_id)
    assert await validate_run(store, run) == []
    return identity, store, statuses


async def test_the_full_profile_runs_on_triton_and_validates(
    conn: asyncpg.Connection, triton_server: TritonServer, media: MediaLibrary, tmp_path: Path
) -> None:
    full = (await _profiles(conn))["full"]
    meta = VideoMeta(title="A face", description="Say hello")
    await _run_on_triton(full, meta, triton_server, media, tmp_path)


async def test_the_prediction_profile_forecasts_on_triton_and_validates(
    conn: asyncpg.Connection, triton_server: TritonServer, media: MediaLibrary, tmp_path: Path
) -> None:
    prediction = (await _profiles(conn))["prediction"]
    meta = VideoMeta(title="How I cook pasta in 10 minutes", description="Easy dinner",
                     tags=("pasta", "cooking"), category_id=26, channel_follower_count=12000)
    identity, store, statuses = await _run_on_triton(prediction, meta, triton_server, media,
                                                     tmp_path)
    assert statuses["popularity_prediction"][0] == "ok"
    key = artifact_key(identity.platform_id, identity.video_id, identity.run_id,
                       "popularity_prediction")
    artifact = decode_npz(await store.get_bytes(key), where=key)
    forecast = artifact.arrays
    views, likes = forecast["views"], forecast["likes"]
    assert 0 < views[0] <= views[1] <= views[2] and 0 < likes[0] <= likes[1] <= likes[2]
    assert views[0] < views[2]  # a real interval, not a point
    assert len(forecast["whatif_current"]) >= 1  # title length and tag count at least
    # The NPZ names the served version the run pinned, and the server serves exactly it.
    assert artifact.meta.model == "popularity_predictor:1"
    client = triton_server.client()
    assert client.model_config("popularity_predictor", "1")["name"] == "popularity_predictor"
    # The result as the API shows it: the same numbers, the display string, the what-ifs.
    doc = forecast_json(forecast, artifact.meta.model)
    assert doc["model"] == "popularity_predictor:1"
    assert doc["views"]["p10"] <= doc["views"]["p50"] <= doc["views"]["p90"]
    assert doc["display"]["views"].startswith(f"{short_count(views[1])} views (")
    assert "80 % interval" in doc["display"]["views"]
    assert doc["whatifs"] and all(w["views"]["p10"] <= w["views"]["p50"] <= w["views"]["p90"]
                                  for w in doc["whatifs"])
    # What `trendflow analyze … --profile prediction` (and `make demo`) prints of it.
    lines: list[str] = []
    print_summary(AnalysisResult(run_id="r", status="ok", error=None, price=Decimal(1),
                                 charged=Decimal(1), artifacts=None, forecast=doc),
                  out=lines.append)
    shown = "\n".join(lines)
    assert f"forecast (popularity_predictor:1): {doc['display']['views']}" in shown
    assert doc["display"]["likes"] in shown
    shown_whatifs = [ln for ln in lines if ln.startswith("  what if: ")]
    top = sorted(doc["whatifs"], key=lambda w: -abs(w["change_p50_views"]))[:3]
    assert len(shown_whatifs) == len(top) >= 1
    for w, line in zip(top, shown_whatifs, strict=True):  # the largest changes first
        assert w["label"] in line and f"{short_count(w['views']['p50'])} views" in line
        assert f"80 % {short_count(w['views']['p10'])} – {short_count(w['views']['p90'])}" in line
    # Train/serve identity: the training path's row for the same metadata equals the served
    # row on every column a metadata-only labelled video has.
    trained_cols = [i for i, n in enumerate(TIER0_FEATURES)
                    if n.split(".")[0] in METADATA_ONLY_COMPONENTS]
    served = forecast["features"]
    training = tier0_vector(metadata_components(meta, client), age_days=30.0)
    probe_cols = [i for i in trained_cols
                  if TIER0_FEATURES[i].split(".")[1] not in PROBED_KEYS]
    assert np.array_equal(served[probe_cols], training[probe_cols], equal_nan=True)
