"""The cache is private where the inputs are: another user's upload of the same bytes never
gets results computed from someone else's metadata, and never sees another user's run id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.api.test_delete import execute
from tests.fixtures.api import ApiHarness
from tests.fixtures.media import MediaLibrary

A_META = {"title": "Secret launch 2026-01-15", "tags": ["product-launch"],
          "description": "embargoed until Friday!"}


async def ask(api: ApiHarness, who: str, clip: Path, components: list[str],
              meta: dict[str, Any]) -> dict[str, Any]:
    """``who`` uploads ``clip`` with ``meta`` and asks for a run of ``components``."""
    h = api[who].headers
    pid = f"{who}-{'-'.join(c[:4] for c in components)}"
    r = await api.client.put(f"/api/profiles/{pid}", headers=h, json={
        "profile_id": pid, "name": pid, "components": [{"name": n} for n in components]})
    assert r.status_code == 200, r.text
    up = await api.client.post("/api/uploads", content=clip.read_bytes(), headers={
        **h, "X-Filename": clip.name, "X-Upload-Meta": json.dumps(meta)})
    assert up.status_code == 201, up.text
    run = await api.client.post("/api/runs", headers=h, json={
        "upload_id": up.json()["upload_id"], "profile_id": pid, "cache_ttl_days": 3})
    assert run.status_code == 201, run.text
    return dict(run.json())


async def finished(api: ApiHarness, run: dict[str, Any], workdir: Path) -> None:
    if run["status"] == "queued":
        await execute(api, run["run_id"], workdir / run["run_id"])


async def metadata_figures(api: ApiHarness, who: str, run_id: str) -> dict[str, Any]:
    r = await api.client.get(f"/api/runs/{run_id}/components/metadata_features",
                             headers=api[who].headers)
    assert r.status_code == 200, r.text
    keys = r.json()["keys"]
    return {k: keys[k]["value"] for k in ("title_chars", "tags_count", "description_chars")}


async def test_the_same_bytes_with_other_metadata_are_analysed_for_their_own_user(
    api: ApiHarness, media: MediaLibrary, tmp_path: Path
) -> None:
    clip = media.path("scene_cuts")
    both = ["metadata_features", "shot_detection"]
    a = await ask(api, "alice", clip, both, A_META)
    await finished(api, a, tmp_path)
    b = await ask(api, "bob", clip, both, {"title": "B's copy"})
    assert b["status"] == "queued" and b["reused_from_run_id"] is None  # not alice's results
    await finished(api, b, tmp_path)
    assert await metadata_figures(api, "bob", b["run_id"]) == {
        "title_chars": 8, "tags_count": 0, "description_chars": 0}
    assert await metadata_figures(api, "alice", a["run_id"]) == {
        "title_chars": len(A_META["title"]), "tags_count": 1,
        "description_chars": len(A_META["description"])}


async def test_video_only_results_are_shared_without_showing_the_other_users_run(
    api: ApiHarness, media: MediaLibrary, tmp_path: Path
) -> None:
    clip = media.path("scene_cuts")
    a = await ask(api, "alice", clip, ["shot_detection"], A_META)
    await finished(api, a, tmp_path)
    b = await ask(api, "bob", clip, ["shot_detection"], {"title": "B's copy"})
    assert b["status"] == "ok"  # frames are the same for everyone: reused at once
    assert b["reused_from_run_id"] is None and a["run_id"] not in json.dumps(b)
    h = api["bob"].headers
    for path in (f"/api/runs/{b['run_id']}", f"/api/runs/{b['run_id']}/status",
                 f"/api/runs/{b['run_id']}/components/shot_detection", "/api/runs"):
        r = await api.client.get(path, headers=h)
        assert r.status_code == 200, (path, r.text)
        assert a["run_id"] not in r.text, path
    comp = (await api.client.get(f"/api/runs/{b['run_id']}/components/shot_detection",
                                 headers=h)).json()
    assert comp["meta"]["run_id"] == b["run_id"]
