"""The HTTP API in-process on the real PostgreSQL and a LocalStore: what a client sees."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from tests.fixtures.api import ApiHarness
from trendflow.contracts.identity import upload_video_id
from trendflow.media import synth

YT = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"


async def upload(api: ApiHarness, who: str, path: Path, meta: dict[str, Any] | None = None
                 ) -> httpx.Response:
    headers = {**api[who].headers, "X-Filename": path.name}
    if meta is not None:
        headers["X-Upload-Meta"] = json.dumps(meta)
    return await api.client.post("/api/uploads", content=path.read_bytes(), headers=headers)


async def balance(api: ApiHarness, who: str) -> tuple[Decimal, Decimal, int]:
    me = (await api.client.get("/api/me", headers=api[who].headers)).json()
    return Decimal(me["balance"]), Decimal(me["reserved"]), len(me["ledger"])


async def count_runs(api: ApiHarness) -> int:
    async with api.ctx.db.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM runs"))


FAST = ["metadata_features", "shot_detection", "color_stats", "motion", "loudness",
        "audio_features"]


@pytest.fixture
async def profile(api: ApiHarness) -> str:
    """Alice's copy of the built-in ``fast`` components (template render)."""
    body = {"profile_id": "alice-fast", "name": "fast", "components": [{"name": n} for n in FAST]}
    r = await api.client.put("/api/profiles/alice-fast", json=body, headers=api["alice"].headers)
    assert r.status_code == 200, r.text
    return "alice-fast"


@pytest.fixture
async def uploaded(api: ApiHarness, scene_cuts_clip: synth.Clip, profile: str) -> dict[str, Any]:
    r = await upload(api, "alice", scene_cuts_clip.path, {"title": "Cuts", "tags": ["a", "b"]})
    assert r.status_code == 201, r.text
    return {**r.json(), "profile": profile}


async def test_upload_is_probed_and_stored(api: ApiHarness, uploaded: dict[str, Any],
                                           scene_cuts_clip: synth.Clip) -> None:
    assert uploaded["video_id"] == upload_video_id(scene_cuts_clip.path)
    assert uploaded["duration_s"] == pytest.approx(scene_cuts_clip.duration_s, abs=0.2)
    assert (uploaded["width"], uploaded["height"]) == (192, 108)
    assert uploaded["meta"]["tags"] == ["a", "b"]
    keys = await api.ctx.store.list(f"uploads/{uploaded['upload_id']}/")
    assert len(keys) == 1  # its record
    assert await api.ctx.store.list("upload_content/") == [
        f"upload_content/{uploaded['sha256']}"]  # the file, by content hash


async def test_estimate_then_run_reserves_credits_and_lists(
    api: ApiHarness, uploaded: dict[str, Any]
) -> None:
    body = {"upload_id": uploaded["upload_id"], "profile_id": uploaded["profile"]}
    est = await api.client.post("/api/estimate", json=body, headers=api["alice"].headers)
    assert est.status_code == 200, est.text
    total = Decimal(est.json()["total"])
    assert total > 0 and set(est.json()["components"]) >= {"shot_detection", "loudness"}
    before = await balance(api, "alice")

    r = await api.client.post("/api/runs", json=body, headers=api["alice"].headers)
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == "queued" and run["created"] is True
    bal, reserved, _ = await balance(api, "alice")
    assert bal == before[0] and reserved == before[1] + total

    status = await api.client.get(f"/api/runs/{run['run_id']}/status",
                                  headers=api["alice"].headers)
    assert status.status_code == 200
    comps = {c["name"]: c["status"] for c in status.json()["components"]}
    assert set(comps) == set(est.json()["components"]) and set(comps.values()) == {"pending"}

    page = await api.client.get("/api/runs?limit=10", headers=api["alice"].headers)
    assert [i["run_id"] for i in page.json()["items"]] == [run["run_id"]]
    # no results yet
    res = await api.client.get(f"/api/runs/{run['run_id']}", headers=api["alice"].headers)
    assert res.status_code == 409 and res.json()["code"] == "run_not_ready"


async def test_the_estimate_takes_the_run_body_and_answers_as_creation_will(
    api: ApiHarness, profile: str
) -> None:
    api.ctx.settings.api.webhook_allow_loopback = True  # a receiver on this machine
    body = {"youtube_url": YT, "profile_id": profile, "cache_ttl_days": 0,
            "callback_url": "http://127.0.0.1:9/hook"}
    est = await api.client.post("/api/estimate", json=body, headers=api["alice"].headers)
    assert est.status_code == 200, est.text
    quote = Decimal(est.json()["total"])
    # The quote as max_total: the very body is accepted and reserves the quote.
    before = await balance(api, "alice")
    exact = {**body, "max_total": str(quote)}
    assert (await api.client.post("/api/estimate", json=exact,
                                  headers=api["alice"].headers)).status_code == 200
    r = await api.client.post("/api/runs", json=exact, headers=api["alice"].headers)
    assert r.status_code == 201, r.text
    assert (await balance(api, "alice"))[1] == before[1] + quote
    # What creation refuses, the estimate refuses the same way (nothing reserved either).
    refused = [({**body, "max_total": str(quote - Decimal("0.01"))}, 409, "price_changed"),
               ({**body, "callback_url": "http://100.64.0.1/hook"}, 400,
                "invalid_callback_url")]
    for req, status, code in refused:
        for path in ("/api/estimate", "/api/runs"):
            r = await api.client.post(path, json=req, headers=api["alice"].headers)
            assert (r.status_code, r.json()["code"]) == (status, code), (path, r.text)
    assert (await balance(api, "alice"))[1] == before[1] + quote


async def test_idempotency_key_replay_and_conflict(api: ApiHarness,
                                                   uploaded: dict[str, Any]) -> None:
    body = {"upload_id": uploaded["upload_id"], "profile_id": uploaded["profile"]}
    h = {**api["alice"].headers, "Idempotency-Key": "k-1"}
    first = await api.client.post("/api/runs", json=body, headers=h)
    again = await api.client.post("/api/runs", json=body, headers=h)
    assert first.status_code == again.status_code == 201
    assert again.json()["run_id"] == first.json()["run_id"] and again.json()["created"] is False
    snapshot = (await balance(api, "alice"), await count_runs(api))
    other = await api.client.post("/api/runs", json={**body, "cache_ttl_days": 0}, headers=h)
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    assert (await balance(api, "alice"), await count_runs(api)) == snapshot


async def test_cancel_queued_run_without_a_scheduler_returns_every_reserved_credit(
    api: ApiHarness, uploaded: dict[str, Any]
) -> None:
    assert api.ctx.scheduler is None  # the API cancels the queued run itself
    body = {"upload_id": uploaded["upload_id"], "profile_id": uploaded["profile"]}
    before = await balance(api, "alice")
    run = (await api.client.post("/api/runs", json=body, headers=api["alice"].headers)).json()
    assert (await balance(api, "alice"))[1] > before[1]
    r = await api.client.post(f"/api/runs/{run['run_id']}/cancel", headers=api["alice"].headers)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    cancelled = await balance(api, "alice")
    assert cancelled[:2] == before[:2]  # nothing charged, nothing held
    again = await api.client.post(f"/api/runs/{run['run_id']}/cancel",
                                  headers=api["alice"].headers)
    assert again.json()["status"] == "cancelled"
    assert await balance(api, "alice") == cancelled  # no ledger row twice


async def test_cache_hit_reuses_artifacts_instantly(api: ApiHarness,
                                                    uploaded: dict[str, Any]) -> None:
    body = {"upload_id": uploaded["upload_id"], "profile_id": uploaded["profile"]}
    first = (await api.client.post("/api/runs", json=body, headers=api["alice"].headers)).json()
    async with api.ctx.db.acquire() as conn:  # as the scheduler leaves a finished run
        await conn.execute("UPDATE runs SET status='ok', finished_at=now() WHERE run_id=$1",
                           uuid.UUID(first["run_id"]))
        await conn.execute("UPDATE run_components SET status='ok' WHERE run_id=$1",
                           uuid.UUID(first["run_id"]))
    r = await api.client.post("/api/runs", json=body, headers=api["alice"].headers)
    assert r.status_code == 201, r.text
    reused = r.json()
    assert reused["status"] == "ok" and reused["reused_from_run_id"] == first["run_id"]
    st = (await api.client.get(f"/api/runs/{reused['run_id']}/status",
                               headers=api["alice"].headers)).json()
    assert st["progress"] == 1.0 and {c["status"] for c in st["components"]} == {"ok"}
    # ttl 0 disables the cache
    fresh = await api.client.post("/api/runs", json={**body, "cache_ttl_days": 0},
                                  headers=api["alice"].headers)
    assert fresh.json()["status"] == "queued"


async def test_profiles_crud_builtins_read_only(api: ApiHarness) -> None:
    mine = {"profile_id": "alice-cuts", "name": "cuts only",
            "components": [{"name": "shot_detection"}]}
    r = await api.client.put("/api/profiles/alice-cuts", json=mine, headers=api["alice"].headers)
    assert r.status_code == 200, r.text
    assert r.json()["owned"] is True
    ids = {p["profile_id"] for p in (await api.client.get(
        "/api/profiles", headers=api["alice"].headers)).json()}
    assert {"fast", "full", "alice-cuts"} <= ids
    bob_ids = {p["profile_id"] for p in (await api.client.get(
        "/api/profiles", headers=api["bob"].headers)).json()}
    assert "alice-cuts" not in bob_ids
    assert (await api.client.get("/api/profiles/alice-cuts",
                                 headers=api["bob"].headers)).status_code == 404
    steal = await api.client.put("/api/profiles/alice-cuts", json=mine,
                                 headers=api["bob"].headers)
    assert steal.status_code == 403
    builtin = await api.client.put("/api/profiles/fast", json={**mine, "profile_id": "fast"},
                                   headers=api["alice"].headers)
    assert builtin.status_code == 403 and "read-only" in builtin.json()["message"]
    assert (await api.client.delete("/api/profiles/fast",
                                    headers=api["alice"].headers)).status_code == 403
    d = await api.client.delete("/api/profiles/alice-cuts", headers=api["alice"].headers)
    assert d.status_code == 204


async def test_other_users_cannot_reach_runs_uploads_ledger(
    api: ApiHarness, uploaded: dict[str, Any]
) -> None:
    body = {"upload_id": uploaded["upload_id"], "profile_id": uploaded["profile"]}
    run = (await api.client.post("/api/runs", json=body, headers=api["alice"].headers)).json()
    rid = run["run_id"]
    bob = api["bob"].headers
    for method, url in [
        ("GET", f"/api/runs/{rid}"),
        ("GET", f"/api/runs/{rid}/status"),
        ("GET", f"/api/runs/{rid}/components/shot_detection"),
        ("GET", f"/api/runs/{rid}/components/shot_detection.npz"),
        ("POST", f"/api/runs/{rid}/cancel"),
    ]:
        r = await api.client.request(method, url, headers=bob)
        assert r.status_code == 404 and r.json()["code"] == "run_not_found", (url, r.text)
    assert (await api.client.get("/api/runs", headers=bob)).json()["items"] == []
    r = await api.client.post("/api/runs", json=body, headers=bob)
    assert r.status_code == 404 and r.json()["code"] == "upload_not_found"
    r = await api.client.post("/api/estimate", json=body, headers=bob)
    assert r.status_code == 404 and r.json()["code"] == "upload_not_found"
    bob_me = (await api.client.get("/api/me", headers=bob)).json()
    assert all(e["run_id"] != rid for e in bob_me["ledger"])
    # admin routes are admins' only
    assert (await api.client.get("/api/admin/users", headers=bob)).status_code == 403


async def test_admin_creates_user_token_and_tops_up(api: ApiHarness) -> None:
    adm = api["admin"].headers
    u = await api.client.post("/api/admin/users", json={"email": "carol@example.com"},
                              headers=adm)
    assert u.status_code == 201, u.text
    uid = u.json()["user_id"]
    t = await api.client.post(f"/api/admin/users/{uid}/tokens", json={"name": "cli"},
                              headers=adm)
    token = t.json()["token"]
    top = await api.client.post(f"/api/admin/users/{uid}/topups",
                                json={"amount": "12.5", "note": "welcome"}, headers=adm)
    assert top.status_code == 200 and Decimal(top.json()["balance"]) == Decimal("12.5")
    me = (await api.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})).json()
    assert me["email"] == "carol@example.com" and me["ledger"][0]["kind"] == "topup"
    revoke = await api.client.delete(f"/api/admin/users/{uid}/tokens/{t.json()['token_id']}",
                                     headers=adm)
    assert revoke.status_code == 204
    r = await api.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    res = await api.client.get("/api/admin/resources", headers=adm)
    assert "shot_detection" in res.json()


async def test_health_reports_each_dependency(api: ApiHarness) -> None:
    r = await api.client.get("/health")
    checks = r.json()["checks"]
    assert set(checks) == {"database", "store", "scheduler", "triton"}
    assert checks["database"]["ok"] and checks["store"]["ok"]
    assert not checks["scheduler"]["ok"]  # none connected in-process
    assert r.status_code == 503 and r.json()["status"] == "degraded"
    assert (await api.client.get("/health/live")).json() == {"status": "ok"}
    m = await api.client.get("/metrics")
    assert m.status_code == 200 and b"trendflow_runs_total" in m.content


async def test_health_checks_the_configured_triton_or_reports_it_disabled(
    api: ApiHarness, triton_server: Any
) -> None:
    triton = api.ctx.settings.triton
    triton.url, triton.protocol = triton_server.info.grpc_url, "grpc"
    checks = (await api.client.get("/health")).json()["checks"]
    assert checks["triton"]["ok"] and checks["triton"]["url"] == triton_server.info.grpc_url
    triton.url = "127.0.0.1:9"  # nothing listens there
    checks = (await api.client.get("/health")).json()["checks"]
    assert not checks["triton"]["ok"] and checks["triton"]["code"] == "service_unavailable"
    triton.enabled = False
    checks = (await api.client.get("/health")).json()["checks"]
    assert checks["triton"]["ok"] and checks["triton"]["enabled"] is False




async def test_created_upload_and_run_say_where_they_are(api: ApiHarness,
                                                        scene_cuts_clip: synth.Clip,
                                                        profile: str) -> None:
    up = await upload(api, "alice", scene_cuts_clip.path)
    assert up.status_code == 201
    where = up.headers["Location"]
    assert where == f"/api/uploads/{up.json()['upload_id']}"
    again = await api.client.get(where, headers=api["alice"].headers)
    assert again.status_code == 200 and again.json() == up.json()
    theirs = await api.client.get(where, headers=api["bob"].headers)
    assert theirs.status_code == 404 and theirs.json()["code"] == "upload_not_found"

    run = await api.client.post("/api/runs", headers=api["alice"].headers,
                                json={"upload_id": up.json()["upload_id"], "profile_id": profile})
    assert run.status_code == 201
    assert run.headers["Location"] == f"/api/runs/{run.json()['run_id']}"
    read = await api.client.get(run.headers["Location"], headers=api["alice"].headers)
    assert read.status_code == 409 and read.json()["code"] == "run_not_ready"  # queued


async def test_status_says_when_to_poll_again_until_the_run_ends(
    api: ApiHarness, uploaded: dict[str, Any]
) -> None:
    body = {"upload_id": uploaded["upload_id"], "profile_id": uploaded["profile"]}
    run = (await api.client.post("/api/runs", json=body, headers=api["alice"].headers)).json()
    status = f"/api/runs/{run['run_id']}/status"
    queued = await api.client.get(status, headers=api["alice"].headers)
    assert queued.json()["status"] == "queued"
    assert int(queued.headers["Retry-After"]) >= 1
    await api.client.post(f"/api/runs/{run['run_id']}/cancel", headers=api["alice"].headers)
    ended = await api.client.get(status, headers=api["alice"].headers)
    assert ended.json()["status"] == "cancelled"
    assert "Retry-After" not in ended.headers  # nothing more to wait for


@pytest.mark.parametrize("url", [
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42s",
    "https://youtu.be/dQw4w9WgXcQ?si=share",
    "youtube.com/shorts/dQw4w9WgXcQ",
    "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
    "https://music.youtube.com/watch?v=dQw4w9WgXcQ&list=RD1",
])
async def test_estimate_names_the_video_a_url_stands_for(api: ApiHarness, profile: str,
                                                        url: str) -> None:
    r = await api.client.post("/api/estimate", headers=api["alice"].headers,
                              json={"youtube_url": url, "profile_id": profile})
    assert r.status_code == 200, r.text
    est = r.json()
    assert (est["platform_id"], est["video_id"], est["source_url"]) == (
        "youtube", "dQw4w9WgXcQ", YT)


async def test_estimate_of_an_upload_names_its_video(api: ApiHarness, uploaded: dict[str, Any],
                                                    scene_cuts_clip: synth.Clip) -> None:
    r = await api.client.post("/api/estimate", headers=api["alice"].headers,
                              json={"upload_id": uploaded["upload_id"],
                                    "profile_id": uploaded["profile"]})
    est = r.json()
    assert (est["platform_id"], est["video_id"], est["source_url"]) == (
        "upload", upload_video_id(scene_cuts_clip.path), None)


async def test_results_of_a_real_run_match_their_published_schemas(
    api: ApiHarness, scene_cuts_clip: synth.Clip, tmp_path: Path
) -> None:
    """The run, one component and the report of an executed run, each checked against the
    schema ``/openapi.json`` publishes for its route (none of them is an untyped object)."""
    from tests.api.test_delete import analysed

    run = await analysed(api, "alice", scene_cuts_clip.path, tmp_path)
    doc = (await api.client.get("/openapi.json")).json()
    rid = run["run_id"]
    for route, path in [("/api/runs/{run_id}", f"/api/runs/{rid}"),
                        ("/api/runs/{run_id}/components/{name}",
                         f"/api/runs/{rid}/components/shot_detection"),
                        ("/api/runs/{run_id}/report", f"/api/runs/{rid}/report")]:
        schema = doc["paths"][route]["get"]["responses"]["200"]["content"][
            "application/json"]["schema"]
        assert "$ref" in schema or "oneOf" in schema, route
        r = await api.client.get(path, headers=api["alice"].headers)
        assert r.status_code == 200, r.text
        Draft202012Validator({**schema, "components": doc["components"]}).validate(r.json())
    shots = (await api.client.get(f"/api/runs/{rid}/components/shot_detection",
                                  headers=api["alice"].headers)).json()
    assert shots["keys"]["n_cuts"]["value"] == len(scene_cuts_clip.cuts_s)
