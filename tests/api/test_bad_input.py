"""Bad input: a clear 4xx with a stable code; nothing created, no credits moved."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_routes import balance, count_runs, profile, upload, uploaded  # noqa: F401
from tests.fixtures.api import ApiHarness, api_settings
from trendflow.media import synth
from trendflow.triton.server import free_port

# Params shot_detection does not declare, or of the wrong type: refused before anything is
# reserved, not failed later in a worker.
BAD_PARAMS = [{"threshold": "x"}, {"min_content": "x"}, {"window": 2.5}, {"window": True}]


async def _unchanged(api: ApiHarness, call: Any) -> Any:
    before = (await balance(api, "alice"), await count_runs(api))
    r = await call()
    assert (await balance(api, "alice"), await count_runs(api)) == before
    return r


@pytest.mark.parametrize(
    ("headers", "code"),
    [({}, "unauthorized"), ({"Authorization": "Bearer tf_nope"}, "unauthorized"),
     ({"Authorization": "Basic abc"}, "unauthorized")],
)
async def test_missing_or_invalid_token(api: ApiHarness, headers: dict[str, str],
                                        code: str) -> None:
    r = await api.client.get("/api/runs", headers=headers)
    assert r.status_code == 401 and r.json()["code"] == code


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"youtube_url": "https://vimeo.com/12345", "profile_id": "alice-fast"},
         400, "invalid_video_url"),
        ({"youtube_url": "http://10.0.0.5/watch?v=dQw4w9WgXcQ", "profile_id": "alice-fast"},
         400, "invalid_video_url"),
        ({"youtube_url": "https://youtu.be/dQw4w9WgXcQ", "profile_id": "no-such"},
         404, "profile_not_found"),
        ({"youtube_url": "https://youtu.be/dQw4w9WgXcQ", "profile_id": "../etc"},
         400, "invalid_input"),
        ({"youtube_url": "https://youtu.be/dQw4w9WgXcQ",
          "profile": {"components": [{"name": "telepathy"}]}}, 404, "component_not_found"),
        ({"youtube_url": "https://youtu.be/shortclip01", "profile_id": "alice-fast"},
         422, "video_too_short"),  # 2 s per YouTube's metadata (tests/fixtures/youtube.py)
        ({"youtube_url": "https://youtu.be/longvideo01", "profile_id": "alice-fast"},
         422, "video_too_long"),  # 1 h
        ({"youtube_url": "https://youtu.be/nosuchvideo", "profile_id": "alice-fast"},
         404, "video_unavailable"),
        ({"youtube_url": "https://youtu.be/dQw4w9WgXcQ", "profile_id": "alice-fast",
          "duration_s": 10}, 400, "invalid_input"),  # the price is not the client's claim
        ({"youtube_url": "https://youtu.be/dQw4w9WgXcQ", "profile_id": "alice-fast",
          "cache_ttl_days": -1}, 400, "invalid_input"),
        ({"youtube_url": "https://youtu.be/dQw4w9WgXcQ", "profile_id": "alice-fast",
          "cache_ttl_days": 10**9}, 400, "invalid_input"),
        ({"youtube_url": "https://youtu.be/dQw4w9WgXcQ", "profile_id": "alice-fast",
          "callback_url": "http://169.254.169.254/hook"}, 400, "invalid_callback_url"),
        ({"youtube_url": "https://youtu.be/dQw4w9WgXcQ", "profile_id": "alice-fast",
          "callback_url": "file:///etc/passwd"}, 400, "invalid_callback_url"),
        ({"upload_id": "../../etc/passwd", "profile_id": "alice-fast"}, 400, "invalid_input"),
        *[({"youtube_url": "https://youtu.be/dQw4w9WgXcQ",
            "profile": {"components": [{"name": "shot_detection", "params": params}]}},
           400, "invalid_profile") for params in BAD_PARAMS],
    ],
)
async def test_run_request_refused(api: ApiHarness, profile: str,  # noqa: F811
                                   body: dict[str, Any], status: int, code: str) -> None:
    r = await _unchanged(api, lambda: api.client.post("/api/runs", json=body,
                                                      headers=api["alice"].headers))
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert r.json()["message"]


UNREADABLE = [b"{not json", b"", b"\xff\xfe\x00garbage", "{\"\xe9\"".encode("latin-1"),
              b'{"a": }', b"\x00\x01", b"nul\x00l"]


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
@pytest.mark.parametrize("path", ["/api/runs", "/api/estimate"])
async def test_an_unreadable_body_is_malformed_json_whatever_its_bytes(
    api: ApiHarness, path: str, content_type: str | None
) -> None:
    headers = dict(api["alice"].headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    answers = set()
    for raw in UNREADABLE:
        r = await _unchanged(api, lambda raw=raw: api.client.post(  # type: ignore[misc]
            path, content=raw, headers=headers))
        answers.add((r.status_code, r.json()["code"], r.json()["message"]))
    assert len(answers) == 1 and next(iter(answers))[:2] == (400, "malformed_json"), answers
    # JSON of the wrong shape is readable: its problems are listed as invalid_input.
    r = await api.client.post(path, content=b"[1, 2]", headers={
        **api["alice"].headers, "Content-Type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_input"), r.text
    assert r.json()["details"]["errors"]


async def test_a_callback_url_without_webhooks_is_accepted_with_a_warning(
    api: ApiHarness, profile: str,  # noqa: F811
) -> None:
    api.ctx.settings.api.webhook_allow_loopback = True  # a receiver on this machine
    body = {"youtube_url": "https://youtu.be/dQw4w9WgXcQ", "profile_id": profile,
            "callback_url": f"http://127.0.0.1:{free_port()}/hook"}
    r = await api.client.post("/api/runs", json=body, headers=api["alice"].headers)
    assert r.status_code == 201, r.text
    assert r.json()["warnings"] == []  # webhooks on: it will be called
    api.ctx.settings.api.webhook_key = None  # a deployment without webhooks
    r = await api.client.post("/api/runs", json={**body, "cache_ttl_days": 0},
                              headers=api["alice"].headers)
    assert r.status_code == 201, r.text
    (warning,) = r.json()["warnings"]
    assert "callback_url" in warning and "nothing will be delivered" in warning
    without = {k: v for k, v in body.items() if k != "callback_url"}
    r = await api.client.post("/api/runs", json={**without, "cache_ttl_days": 1},
                              headers=api["alice"].headers)
    assert r.status_code == 201 and r.json()["warnings"] == [], r.text


async def test_inline_profile_ids_show_no_user_id(api: ApiHarness) -> None:
    body = {"youtube_url": "https://youtu.be/dQw4w9WgXcQ",
            "profile": {"components": [{"name": "metadata_features"}]}}
    ids = {}
    for who in ("alice", "alice", "bob"):
        r = await api.client.post("/api/runs", json={**body, "cache_ttl_days": 0},
                                  headers=api[who].headers)
        assert r.status_code == 201, r.text
        ids.setdefault(who, set()).add(r.json()["profile_id"])
    (alice_id,), (bob_id,) = ids["alice"], ids["bob"]  # one stored copy per user and config
    assert alice_id != bob_id
    for who, pid in (("alice", alice_id), ("bob", bob_id)):
        user = api[who].user.user_id
        assert user.hex[:8] not in pid and str(user)[:8] not in pid
        assert pid.startswith("inline-") and len(pid) == len("inline-") + 24
        mine = await api.client.get(f"/api/profiles/{pid}", headers=api[who].headers)
        assert mine.status_code == 200, mine.text
    other = await api.client.get(f"/api/profiles/{alice_id}", headers=api["bob"].headers)
    assert other.status_code == 404


async def test_path_like_run_id(api: ApiHarness) -> None:
    r = await api.client.get("/api/runs/..%2F..%2Fetc/status", headers=api["alice"].headers)
    assert r.status_code in (400, 404) and r.json()["code"] in ("invalid_input", "not_found")
    r = await api.client.get("/api/runs/not-a-uuid/status", headers=api["alice"].headers)
    assert r.status_code == 400 and r.json()["code"] == "invalid_input"


async def test_insufficient_credits_creates_nothing(api: ApiHarness, scene_cuts_clip: synth.Clip,
                                                    ) -> None:
    body = {"profile_id": "broke-p", "name": "p", "components": [{"name": "shot_detection"}]}
    await api.client.put("/api/profiles/broke-p", json=body, headers=api["broke"].headers)
    up = (await upload(api, "broke", scene_cuts_clip.path)).json()
    n = await count_runs(api)
    r = await api.client.post("/api/runs", json={"upload_id": up["upload_id"],
                                                 "profile_id": "broke-p"},
                              headers=api["broke"].headers)
    assert r.status_code == 402 and r.json()["code"] == "insufficient_credits"
    assert await count_runs(api) == n


@pytest.mark.parametrize(
    ("clip", "status", "code"),
    [("random_bytes", 415, "unsupported_media"), ("image", 415, "unsupported_media"),
     ("audio_only", 415, "unsupported_media"), ("3s", 422, "video_too_short")],
)
async def test_upload_refused_and_nothing_stored(api: ApiHarness, media: Any, clip: str,
                                                 status: int, code: str) -> None:
    r = await upload(api, "alice", media.path(clip))
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert await api.ctx.store.list("") == []  # no record, no file


async def test_upload_bad_metadata(api: ApiHarness, scene_cuts_clip: synth.Clip) -> None:
    r = await upload(api, "alice", scene_cuts_clip.path, {"title": "x", "colour": "red"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_input"
    assert await api.ctx.store.list("") == []  # no record, no file


async def test_oversize_upload(api: ApiHarness, tmp_path: Path) -> None:
    api.ctx.settings = api_settings(tmp_path, api.ctx.db.url, max_upload_mb=1)
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (2 << 20))
    r = await upload(api, "alice", big)
    assert r.status_code == 413 and r.json()["code"] == "upload_too_large"
    assert await api.ctx.store.list("") == []  # no record, no file


async def test_sync_endpoint_off_by_default(api: ApiHarness) -> None:
    r = await api.client.post("/process/sync", json={}, headers=api["alice"].headers)
    assert r.status_code in (400, 404)
    r = await api.client.post("/process/sync", headers=api["alice"].headers,
                              json={"youtube_url": "https://youtu.be/dQw4w9WgXcQ",
                                    "profile_id": "alice-fast"})
    assert r.status_code == 404 and r.json()["code"] == "endpoint_disabled"


async def test_model_backed_profile_refused_when_the_deployment_serves_no_models(
    api: ApiHarness,
) -> None:
    api.ctx.settings.triton.enabled = False
    body = {"youtube_url": "https://youtu.be/dQw4w9WgXcQ",
            "profile": {"components": [{"name": "metadata_features"},
                                       {"name": "text_embeddings"}]}}
    r = await _unchanged(api, lambda: api.client.post("/api/runs", json=body,
                                                      headers=api["alice"].headers))
    assert (r.status_code, r.json()["code"]) == (422, "model_serving_disabled"), r.text
    assert r.json()["details"]["components"] == ["text_embeddings"]


async def test_model_backed_profile_refused_while_no_model_server_is_ready(
    api: ApiHarness,
) -> None:
    triton = api.ctx.settings.triton
    triton.enabled, triton.url = True, f"127.0.0.1:{free_port()}"  # configured, nothing there
    triton.retries, triton.timeout_s = 0, 2
    body = {"youtube_url": "https://youtu.be/dQw4w9WgXcQ",
            "profile": {"components": [{"name": "metadata_features"},
                                       {"name": "text_embeddings"}]}}
    for path in ("/api/estimate", "/api/runs"):
        r = await _unchanged(api, lambda p=path: api.client.post(  # type: ignore[misc]
            p, json=body, headers=api["alice"].headers))
        assert (r.status_code, r.json()["code"]) == (503, "model_serving_unavailable"), r.text
        assert int(r.headers["Retry-After"]) > 0
        assert r.json()["details"]["components"] == ["text_embeddings"]
    # A profile without model-backed components does not need the model server.
    cpu = {**body, "profile": {"components": [{"name": "metadata_features"}]}}
    r = await api.client.post("/api/estimate", json=cpu, headers=api["alice"].headers)
    assert r.status_code == 200, r.text
    r = await api.client.post("/api/runs", json=cpu, headers=api["alice"].headers)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("params", BAD_PARAMS)
async def test_bad_params_are_refused_when_priced(api: ApiHarness, params: dict[str, Any]
                                                  ) -> None:
    body = {"youtube_url": "https://youtu.be/dQw4w9WgXcQ",
            "profile": {"components": [{"name": "shot_detection", "params": params}]}}
    r = await _unchanged(api, lambda: api.client.post("/api/estimate", json=body,
                                                      headers=api["alice"].headers))
    assert (r.status_code, r.json()["code"]) == (400, "invalid_profile"), r.text


async def test_a_profile_with_timeouts_is_refused_at_creation(api: ApiHarness) -> None:
    body = {"youtube_url": "https://youtu.be/dQw4w9WgXcQ",
            "profile": {"components": [{"name": "shot_detection"}],
                        "timeouts": {"component_timout_s": 60}}}
    r = await _unchanged(api, lambda: api.client.post("/api/runs", json=body,
                                                      headers=api["alice"].headers))
    assert 400 <= r.status_code < 500 and r.json()["message"], r.text


async def test_an_unexpected_error_is_one_500_logged_once_with_its_traceback(
    api: ApiHarness, caplog: pytest.LogCaptureFixture
) -> None:
    async def failing() -> None:
        raise RuntimeError("the disk is on fire")

    # A route whose own code fails (first: the Studio at "/" would answer it otherwise).
    api.app.add_api_route("/api/failing", failing, methods=["GET"])
    api.app.router.routes.insert(0, api.app.router.routes.pop())
    with caplog.at_level(logging.DEBUG):
        r = await api.client.get("/api/failing", headers=api["alice"].headers)
    # The client gets the stable answer, without internals (and the exception went no
    # further: the in-process transport would have raised it).
    assert (r.status_code, r.json()["code"]) == (500, "internal_error")
    assert "fire" not in r.text and "Traceback" not in r.text
    told = [rec for rec in caplog.records if "fire" in rec.getMessage()
            or (rec.exc_info and "fire" in str(rec.exc_info[1]))]
    assert len(told) == 1, [(rec.levelname, rec.getMessage()) for rec in told]
    (rec,) = told
    assert rec.levelno == logging.ERROR
    text = rec.getMessage()
    assert "GET /api/failing" in text
    assert "Traceback (most recent call last)" in text
    assert "RuntimeError: the disk is on fire" in text  # the traceback as text, not a tuple
