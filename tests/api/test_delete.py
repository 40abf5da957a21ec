"""Right to deletion (``DELETE /api/videos/{platform}/{id}``) on runs finished as the runtime does.

Each run is requested through the API, executed by the local runner into the harness's store
(manifest, NPZ, frames/<run_id>/), indexed from its manifest and settled — what the scheduler
leaves behind. A second user's request for the same clip and profile is answered from the cache
(``reused_from_run_id``), so the shared-results rules are exercised on real files and rows.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.api.test_routes import upload
from tests.fixtures.api import ApiHarness
from tests.fixtures.media import MediaLibrary
from trendflow.api.deletion import RunRef, plan_deletion
from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.keys import (
    frames_prefix,
    manifest_key,
    run_prefix,
    upload_content_key,
    upload_prefix,
)
from trendflow.contracts.manifest import Manifest
from trendflow.contracts.profile import ProfileConfig
from trendflow.contracts.validate import validate_run
from trendflow.db.rebuild import rebuild_index, restore_manifest
from trendflow.db.repositories import runs as runs_repo
from trendflow.pipeline.runner import run_local
from trendflow.pipeline.segmenter import UploadSource
from trendflow.runs import end_run
from trendflow.runs.sources import meta_from_json
from trendflow.storage.local import LocalStore

COMPONENTS = ["metadata_features", "shot_detection"]  # shot_detection decodes: frames are kept


def store(api: ApiHarness) -> LocalStore:
    assert isinstance(api.ctx.store, LocalStore)
    return api.ctx.store


async def request_run(api: ApiHarness, who: str, clip: Path, **extra: Any) -> dict[str, Any]:
    """``who`` uploads ``clip`` and asks for a run with their copy of the test profile."""
    h = api[who].headers
    body = {"profile_id": f"{who}-cuts", "name": "cuts",
            "components": [{"name": n} for n in COMPONENTS]}
    r = await api.client.put(f"/api/profiles/{who}-cuts", json=body, headers=h)
    assert r.status_code == 200, r.text
    up = await api.client.post("/api/uploads", content=clip.read_bytes(),
                               headers={**h, "X-Filename": clip.name})
    assert up.status_code == 201, up.text
    run = await api.client.post("/api/runs", headers=h, json={
        "upload_id": up.json()["upload_id"], "profile_id": f"{who}-cuts", **extra})
    assert run.status_code == 201, run.text
    return {**run.json(), "upload_id": up.json()["upload_id"], "sha256": up.json()["sha256"]}


async def execute(api: ApiHarness, run_id: str, workdir: Path) -> None:
    """Finish a queued run the way the runtime does: claimed, files, then index rows, then the
    ending with its settlement."""
    rid = uuid.UUID(run_id)
    async with api.ctx.db.acquire() as conn:
        run = await runs_repo.set_run_status(conn, run_id=rid, status="running")
    identity = RunIdentity(
        platform_id=run.platform_id,  # type: ignore[arg-type]
        video_id=run.video_id, run_id=run_id, config_hash=run.config_hash,
        sampling_policy_version=run.sampling_policy_version,
        dataprocessor_version=run.dataprocessor_version,
    )
    source = UploadSource(store(api).root / run.source["key"], meta_from_json(run.source["meta"]))
    manifest = await run_local(
        identity, ProfileConfig.parse(run.profile_config), source, store(api), workdir,
        settings=api.ctx.settings, profile_id=run.profile_id, user_id=str(run.user_id),
    )
    assert manifest.run.status == "ok", manifest.run.error
    async with api.ctx.db.acquire() as conn, conn.transaction():
        await restore_manifest(conn, manifest)
        await end_run(conn, run_id=rid, status="ok")


async def analysed(api: ApiHarness, who: str, clip: Path, workdir: Path,
                   **extra: Any) -> dict[str, Any]:
    """A finished run of ``who`` (executed, or answered from the cache)."""
    run = await request_run(api, who, clip, **extra)
    if run["status"] == "queued":
        await execute(api, run["run_id"], workdir / run["run_id"])
    return run


async def add_render_cache(api: ApiHarness, run: dict[str, Any]) -> None:
    async with api.ctx.db.acquire() as conn:
        await conn.execute(
            "INSERT INTO render_cache (platform_id, video_id, run_id, render_profile_id, "
            "llm_model, prompt_hash, locale, engine, prompt_version, text) "
            "VALUES ($1, $2, $3, 'cuts', 'none', 'h', 'en', 'template', '1', 'three cuts')",
            run["platform_id"], run["video_id"], uuid.UUID(run["run_id"]))


async def rows(api: ApiHarness, video_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every index row of the video, by table."""
    q = {
        "videos": "SELECT * FROM videos WHERE video_id = $1",
        "runs": "SELECT * FROM runs WHERE video_id = $1 ORDER BY created_at",
        "run_components": "SELECT c.* FROM run_components c JOIN runs USING (run_id) "
                          "WHERE video_id = $1 ORDER BY 1, 2",
        "artifacts": "SELECT a.* FROM artifacts a JOIN runs USING (run_id) "
                     "WHERE video_id = $1 ORDER BY 1",
        "render_cache": "SELECT * FROM render_cache WHERE video_id = $1 ORDER BY run_id",
    }
    async with api.ctx.db.acquire() as conn:
        return {t: [dict(r) for r in await conn.fetch(sql, video_id)] for t, sql in q.items()}


async def snapshot(api: ApiHarness, video_id: str) -> tuple[list[str], dict[str, Any]]:
    return await store(api).list(""), await rows(api, video_id)


async def keys_of(api: ApiHarness, run: dict[str, Any]) -> dict[str, list[str]]:
    s = store(api)
    return {
        "run": await s.list(run_prefix(run["platform_id"], run["video_id"], run["run_id"])),
        "frames": await s.list(frames_prefix(run["run_id"])),
        "upload": await s.list(upload_prefix(run["upload_id"])),
        "file": [k for k in await s.list("upload_content/")
                 if k == upload_content_key(run["sha256"])],
    }


async def delete(api: ApiHarness, who: str, run: dict[str, Any]) -> Any:
    return await api.client.delete(f"/api/videos/{run['platform_id']}/{run['video_id']}",
                                   headers=api[who].headers)


@pytest.fixture
async def alice_run(api: ApiHarness, media: MediaLibrary, tmp_path: Path) -> dict[str, Any]:
    run = await analysed(api, "alice", media.path("scene_cuts"), tmp_path / "work")
    assert run["reused_from_run_id"] is None
    await add_render_cache(api, run)
    return run


async def test_sole_owner_deletion_removes_everything(
    api: ApiHarness, alice_run: dict[str, Any]
) -> None:
    before = await keys_of(api, alice_run)
    assert all(before.values()), before  # manifest + NPZ, frames, upload all present
    assert all(await rows(api, alice_run["video_id"]))

    r = await delete(api, "alice", alice_run)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["runs_deleted"], body["runs_kept_for_others"], body["uploads_deleted"],
            body["video_row_deleted"]) == (1, 0, 1, True)
    assert body["objects_deleted"] == sum(len(k) for k in before.values())
    assert await store(api).list("") == []
    assert await rows(api, alice_run["video_id"]) == {
        t: [] for t in ("videos", "runs", "run_components", "artifacts", "render_cache")}
    gone = await api.client.get(f"/api/runs/{alice_run['run_id']}", headers=api["alice"].headers)
    assert gone.status_code == 404 and gone.json()["code"] == "run_not_found"
    async with api.ctx.db.acquire() as conn:  # the money trail stays, unlinked from the run
        ledger = await conn.fetch("SELECT kind, run_id FROM billing_ledger WHERE user_id = $1 "
                                  "AND kind <> 'topup'", api["alice"].user.user_id)
    assert {e["kind"] for e in ledger} >= {"reserve", "charge"}
    assert {e["run_id"] for e in ledger} == {None}

    # Deleting again: the caller has nothing of the video any more → 404, as documented.
    again = await delete(api, "alice", alice_run)
    assert again.status_code == 404 and again.json()["code"] == "not_found"


async def test_results_another_user_reuses_are_kept_for_them_without_the_owner(
    api: ApiHarness, alice_run: dict[str, Any], media: MediaLibrary, tmp_path: Path
) -> None:
    bob_run = await analysed(api, "bob", media.path("scene_cuts"), tmp_path / "work")
    assert bob_run["status"] == "ok" and bob_run["reused_from_run_id"] is None  # not alice's id
    async with api.ctx.db.acquire() as conn:
        row = await runs_repo.get_run(conn, run_id=uuid.UUID(bob_run["run_id"]))
    assert str(row.reused_from_run_id) == alice_run["run_id"]
    await add_render_cache(api, bob_run)
    alice_keys = await keys_of(api, alice_run)
    bob_npz = await api.client.get(f"/api/runs/{bob_run['run_id']}/components/shot_detection.npz",
                                   headers=api["bob"].headers)
    assert bob_npz.status_code == 200
    # Even before any deletion, bob never sees alice's id in the results he reuses.
    shown = await api.client.get(f"/api/runs/{bob_run['run_id']}", headers=api["bob"].headers)
    assert str(api["alice"].user.user_id) not in shown.text

    r = await delete(api, "alice", alice_run)
    assert r.status_code == 200, r.text
    assert (r.json()["runs_deleted"], r.json()["runs_kept_for_others"],
            r.json()["uploads_deleted"], r.json()["video_row_deleted"]) == (0, 1, 1, False)

    # Bob still reads his results, byte for byte.
    res = await api.client.get(f"/api/runs/{bob_run['run_id']}", headers=api["bob"].headers)
    assert res.status_code == 200, res.text
    assert set(res.json()["components"]) == set(COMPONENTS)
    again = await api.client.get(f"/api/runs/{bob_run['run_id']}/components/shot_detection.npz",
                                 headers=api["bob"].headers)
    assert again.content == bob_npz.content
    cuts = np.load(io.BytesIO(again.content), allow_pickle=False)["n_cuts"]
    assert int(cuts) == 3
    # Alice's access, upload, frames and render cache are gone; her results' files remain.
    alice_id = str(api["alice"].user.user_id)
    for path in (f"/api/runs/{alice_run['run_id']}", f"/api/runs/{alice_run['run_id']}/report"):
        gone = await api.client.get(path, headers=api["alice"].headers)
        assert gone.status_code == 404, path
    listed = await api.client.get("/api/runs", headers=api["alice"].headers)
    assert listed.json()["items"] == []
    now = await keys_of(api, alice_run)
    # Bob's upload of the same bytes still names the one stored file: it stays.
    assert now == {"run": alice_keys["run"], "frames": [], "upload": [],
                   "file": alice_keys["file"]}
    assert await store(api).list(upload_prefix(bob_run["upload_id"]))
    left = await rows(api, alice_run["video_id"])
    assert len(left["videos"]) == 1
    kept = next(r for r in left["runs"] if str(r["run_id"]) == alice_run["run_id"])
    assert (kept["user_id"], kept["callback_url"], kept["idempotency_key"]) == (None, None, None)
    assert [str(r["run_id"]) for r in left["render_cache"]] == [bob_run["run_id"]]

    # The kept manifest names nobody, stays valid, and a rebuilt index does not relink Alice.
    key = manifest_key(alice_run["platform_id"], alice_run["video_id"], alice_run["run_id"])
    raw = await store(api).get_bytes(key)
    assert Manifest.from_json_bytes(raw).run.user_id is None
    assert alice_id not in raw.decode()
    assert alice_id not in res.text
    prefix = run_prefix(alice_run["platform_id"], alice_run["video_id"], alice_run["run_id"])
    assert await validate_run(store(api), prefix) == []
    async with api.ctx.db.acquire() as conn:
        report = await rebuild_index(conn, store(api))
        assert report.ok, report.failures
        owner = await conn.fetchval("SELECT user_id FROM runs WHERE run_id = $1",
                                    uuid.UUID(alice_run["run_id"]))
    assert owner is None
    assert (await delete(api, "alice", alice_run)).status_code == 404

    # When Bob deletes too, nobody's run is left: Alice's kept results go with his.
    last = await delete(api, "bob", bob_run)
    assert last.status_code == 200, last.text
    assert (last.json()["runs_deleted"], last.json()["video_row_deleted"]) == (1, True)
    assert await store(api).list("") == []
    assert await rows(api, alice_run["video_id"]) == {
        t: [] for t in ("videos", "runs", "run_components", "artifacts", "render_cache")}


async def test_identical_uploads_share_one_stored_file_and_outlive_one_users_deletion(
    api: ApiHarness, media: MediaLibrary, tmp_path: Path
) -> None:
    clip = media.path("scene_cuts")
    alice = await analysed(api, "alice", clip, tmp_path / "work")
    bob = await analysed(api, "bob", clip, tmp_path / "work", cache_ttl_days=0)
    assert bob["status"] == "queued" or bob["reused_from_run_id"] is None
    again = await upload(api, "alice", clip)  # the same user, the same bytes once more
    assert again.status_code == 201, again.text
    # Each upload is its own (ids differ); the answers do not say the bytes were stored before.
    answers = [(await api.client.get(f"/api/uploads/{u}", headers=api[who].headers)).json()
               for who, u in (("alice", alice["upload_id"]), ("bob", bob["upload_id"]),
                              ("alice", again.json()["upload_id"]))]
    assert len({a["upload_id"] for a in answers}) == 3
    same = [{k: v for k, v in a.items() if k not in ("upload_id", "created_at")}
            for a in answers]
    assert same[0] == same[1] == same[2]
    # One stored copy of the file, however many uploads.
    assert await store(api).list("upload_content/") == [upload_content_key(alice["sha256"])]
    for who, run in (("alice", alice), ("bob", bob)):
        got = await api.client.get(f"/api/runs/{run['run_id']}/status",
                                   headers=api[who].headers)
        assert got.status_code == 200 and got.json()["status"] == "ok", got.text

    # Alice deletes the video: Bob's upload still analyses from the shared file.
    r = await delete(api, "alice", alice)
    assert r.status_code == 200 and r.json()["uploads_deleted"] == 2, r.text
    assert await store(api).list("upload_content/") == [upload_content_key(alice["sha256"])]
    rerun = await api.client.post("/api/runs", headers=api["bob"].headers, json={
        "upload_id": bob["upload_id"], "profile_id": "bob-cuts", "cache_ttl_days": 0})
    assert rerun.status_code == 201, rerun.text
    await execute(api, rerun.json()["run_id"], tmp_path / "rerun")
    got = await api.client.get(f"/api/runs/{rerun.json()['run_id']}/status",
                               headers=api["bob"].headers)
    assert got.json()["status"] == "ok"
    # The last record gone, the file goes too.
    assert (await delete(api, "bob", bob)).status_code == 200
    assert await store(api).list("") == []


async def test_admin_deletes_the_video_for_everyone(
    api: ApiHarness, alice_run: dict[str, Any], media: MediaLibrary, tmp_path: Path
) -> None:
    bob_reused = await analysed(api, "bob", media.path("scene_cuts"), tmp_path / "work")
    bob_own = await analysed(api, "bob", media.path("scene_cuts"), tmp_path / "work",
                             cache_ttl_days=0)
    assert bob_reused["status"] == "ok" and bob_own["status"] == "queued"  # reused; his own
    assert await store(api).list(frames_prefix(bob_own["run_id"]))

    r = await delete(api, "admin", alice_run)
    assert r.status_code == 200, r.text
    assert (r.json()["runs_deleted"], r.json()["runs_kept_for_others"],
            r.json()["uploads_deleted"], r.json()["video_row_deleted"]) == (3, 0, 3, True)
    assert await store(api).list("") == []
    assert await rows(api, alice_run["video_id"]) == {
        t: [] for t in ("videos", "runs", "run_components", "artifacts", "render_cache")}
    for who, run in (("alice", alice_run), ("bob", bob_reused), ("bob", bob_own)):
        got = await api.client.get(f"/api/runs/{run['run_id']}", headers=api[who].headers)
        assert got.status_code == 404
    assert (await delete(api, "admin", alice_run)).status_code == 404


async def test_another_user_cannot_delete_and_learns_nothing(
    api: ApiHarness, alice_run: dict[str, Any]
) -> None:
    before = await snapshot(api, alice_run["video_id"])
    r = await delete(api, "bob", alice_run)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    # The same answer as for a video nobody has.
    never = await api.client.delete("/api/videos/upload/up-0000000000000000",
                                    headers=api["bob"].headers)
    assert (never.status_code, never.json()["code"]) == (404, "not_found")
    assert r.json()["message"].replace(alice_run["video_id"], "?") == \
        never.json()["message"].replace("up-0000000000000000", "?")
    assert await snapshot(api, alice_run["video_id"]) == before
    res = await api.client.get(f"/api/runs/{alice_run['run_id']}", headers=api["alice"].headers)
    assert res.status_code == 200


async def test_unfinished_run_must_be_cancelled_first(
    api: ApiHarness, alice_run: dict[str, Any], media: MediaLibrary
) -> None:
    running = await request_run(api, "alice", media.path("scene_cuts"), cache_ttl_days=0)
    async with api.ctx.db.acquire() as conn:
        await runs_repo.set_run_status(conn, run_id=uuid.UUID(running["run_id"]),
                                       status="running")
    before = await snapshot(api, alice_run["video_id"])
    r = await delete(api, "alice", alice_run)
    assert r.status_code == 409 and r.json()["code"] == "conflict"
    assert r.json()["details"]["run_ids"] == [running["run_id"]]
    assert await snapshot(api, alice_run["video_id"]) == before


A, B = uuid.UUID(int=1), uuid.UUID(int=2)


def ref(n: int, user: uuid.UUID | None, status: str = "ok",
        reused_from: int | None = None) -> RunRef:
    return RunRef(uuid.UUID(int=100 + n), user, status,
                  None if reused_from is None else uuid.UUID(int=100 + reused_from))


@pytest.mark.parametrize(
    ("runs", "caller", "delete", "unlink", "video_goes"),
    [
        ([ref(1, A)], A, [1], [], True),
        ([ref(1, A), ref(2, B, reused_from=1)], A, [], [1], False),
        ([ref(1, A), ref(2, A, reused_from=1), ref(3, B)], A, [1, 2], [], False),
        ([ref(1, None), ref(2, B, reused_from=1)], B, [1, 2], [], True),  # orphans go last
        ([ref(1, None, "running"), ref(2, A)], A, [2], [], False),  # never under a live run
        ([ref(1, A), ref(2, B, reused_from=1)], None, [1, 2], [], True),  # admin
    ],
)
def test_plan_deletion(runs: list[RunRef], caller: uuid.UUID | None, delete: list[int],
                       unlink: list[int], video_goes: bool) -> None:
    plan = plan_deletion(runs, caller=caller)
    assert [i.int - 100 for i in plan.delete] == delete
    assert [i.int - 100 for i in plan.unlink] == unlink
    assert plan.video_goes is video_goes
