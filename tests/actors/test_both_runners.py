"""The same failures through both runners (the local runner and the Ray runtime) leave the same
manifests: one lifecycle, :mod:`trendflow.pipeline.execution`.

``faces`` has no model pinned in these profiles, so it fails in its setup with
``model_not_found`` on either runner, before any model server is asked; ``face_emotion``
depends on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.actors.conftest import COMPONENTS, Runtime
from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.keys import manifest_key
from trendflow.contracts.manifest import Manifest, load_manifest
from trendflow.db.repositories import profiles as profiles_repo
from trendflow.pipeline.runner import run_local
from trendflow.pipeline.segmenter import UploadSource
from trendflow.pipeline.types import VideoMeta
from trendflow.storage.factory import open_store
from trendflow.storage.local import LocalStore


def _outcome(manifest: Manifest) -> dict[str, Any]:
    """What a user reads of a manifest: statuses, error codes and messages, warnings."""
    run = manifest.run
    return {
        "run": (run.status, None if run.error is None else run.error.code),
        "warnings": sorted(run.warnings),
        "components": {
            name: (rec.status, None if rec.error is None else (rec.error.code, rec.error.message))
            for name, rec in manifest.components.items()
        },
    }


CASES = {
    # An optional dependency that failed fails its dependant (not the layer, not the run).
    "optional dependency failed": (
        {"faces": False, "face_emotion": False},
        {
            "run": ("ok", None),
            "warnings": ["optional component face_emotion failed: component_failed",
                         "optional component faces failed: model_not_found"],
            "faces": "model_not_found",
            "face_emotion": ("component_failed",
                             "face_emotion cannot run: its dependencies ['faces'] did not finish"),
        },
    ),
    # A required dependant of a failed optional component ends the run with its own error.
    "required dependant of a failed optional": (
        {"faces": False, "face_emotion": True},
        {"run": ("error", "component_failed"),
         "warnings": ["optional component faces failed: model_not_found"],
         "faces": "model_not_found",
         "face_emotion": ("component_failed",
                          "face_emotion cannot run: its dependencies ['faces'] did not finish")},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_a_failure_leaves_the_same_manifest_on_both_runners(
    runtime: Runtime, start_scheduler, tmp_path: Path, case: str
) -> None:
    required, expected = CASES[case]
    profile_id = f"both-runners-{case.replace(' ', '-')}"
    async with runtime.pool.acquire() as conn:
        await profiles_repo.save_profile(conn, profile=profiles_repo.Profile(
            profile_id=profile_id, name="both runners", sampling={"fps": 12.0, "height": 96},
            render={"engine": "template"},
            components=tuple(
                [profiles_repo.ProfileComponent(c) for c in COMPONENTS]
                + [profiles_repo.ProfileComponent(c, required=r) for c, r in required.items()]
            ),
        ))
        profile = await profiles_repo.get_profile(conn, profile_id=profile_id)

    start_scheduler(runtime.settings)
    [run_id] = await runtime.queue(1, profile_id=profile_id)
    row = (await runtime.wait([run_id]))[run_id]
    on_ray = await load_manifest(open_store(runtime.settings),
                                 manifest_key(row.platform_id, row.video_id, run_id))

    identity = RunIdentity.create(platform_id="upload", video_id=row.video_id,
                                  config_hash=row.config_hash)
    local = await run_local(
        identity, profile.config(),
        UploadSource(path=runtime.clip.path, meta=VideoMeta(title="bench clip")),
        LocalStore(tmp_path / "local-store"), tmp_path / "local-work", settings=runtime.settings,
    )

    assert _outcome(on_ray) == _outcome(local)
    got = _outcome(local)
    assert got["run"] == expected["run"]
    assert (row.status, (row.error or {}).get("code")) == expected["run"]  # the DB agrees
    assert got["warnings"] == expected["warnings"]
    assert got["components"]["faces"][1][0] == expected["faces"]
    assert got["components"]["face_emotion"][1] == expected["face_emotion"]
    assert all(got["components"][c][0] == "ok" for c in COMPONENTS)
