"""``GET/PATCH /api/me/settings``: each user's own settings, partial changes, refusals in words,
and what the settings change: the cache window of estimates and runs, the language and length
of the written analysis (an LLM-rendered profile against a loopback OpenAI-protocol server)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.api.test_delete import execute
from tests.api.test_routes import FAST, profile, upload, uploaded  # noqa: F401 - fixtures too
from tests.fixtures.api import ApiHarness
from tests.fixtures.media import MediaLibrary
from tests.render.helpers import completion, echo_statements, openai_server


async def test_settings_are_read_changed_and_kept_per_user(api: ApiHarness) -> None:
    alice, bob = api["alice"].headers, api["bob"].headers
    first = await api.client.get("/api/me/settings", headers=alice)
    assert first.json() == {"cache_ttl_days": 3, "report_sentences_min": 50,
                            "report_sentences_max": 60, "report_locale": "ru"}
    changed = await api.client.patch("/api/me/settings", headers=alice,
                                     json={"report_sentences_max": 80, "report_locale": "en"})
    assert changed.status_code == 200
    assert changed.json()["report_sentences_max"] == 80 and changed.json()["cache_ttl_days"] == 3
    assert (await api.client.get("/api/me/settings", headers=alice)).json() == changed.json()
    assert (await api.client.get("/api/me/settings", headers=bob)).json()["report_locale"] == "ru"


async def test_bad_settings_are_refused_with_their_field(api: ApiHarness) -> None:
    alice = api["alice"].headers
    for body in ({"report_sentences_min": 10}, {"report_locale": "de"},
                 {"report_sentences_min": 90, "report_sentences_max": 30},
                 {"report_sentences_min": 70}):  # above the stored maximum (60)
        refused = await api.client.patch("/api/me/settings", headers=alice, json=body)
        assert refused.status_code == 400, body
        assert refused.json()["code"] == "invalid_input", refused.json()
    assert (await api.client.get("/api/me/settings", headers=alice)).json()[
        "report_sentences_min"] == 50


async def _finished_run(api: ApiHarness, body: dict[str, Any]) -> str:
    """A run of alice's, left finished as the scheduler leaves one (a cache candidate)."""
    r = await api.client.post("/api/runs", json={**body, "cache_ttl_days": 0},
                              headers=api["alice"].headers)
    assert r.status_code == 201 and r.json()["status"] == "queued", r.text
    run_id = uuid.UUID(r.json()["run_id"])
    async with api.ctx.db.acquire() as conn:
        await conn.execute("UPDATE runs SET status='ok', finished_at=now() WHERE run_id=$1",
                           run_id)
        await conn.execute("UPDATE run_components SET status='ok' WHERE run_id=$1", run_id)
    return str(run_id)


async def test_the_cache_window_setting_decides_reuse_in_the_estimate_and_the_run(
    api: ApiHarness, uploaded: dict[str, Any]  # noqa: F811
) -> None:
    alice = api["alice"].headers
    body = {"upload_id": uploaded["upload_id"], "profile_id": uploaded["profile"]}
    earlier = await _finished_run(api, body)
    r = await api.client.patch("/api/me/settings", headers=alice, json={"cache_ttl_days": 0})
    assert r.status_code == 200 and r.json()["cache_ttl_days"] == 0

    quote = (await api.client.post("/api/estimate", json=body, headers=alice)).json()
    assert quote["cached"] is False
    fresh = await api.client.post("/api/runs", json={**body, "max_total": quote["total"]},
                                  headers=alice)
    assert fresh.status_code == 201, fresh.text  # the quote was the price
    assert fresh.json()["status"] == "queued" and fresh.json()["reused_from_run_id"] is None

    # the request's own window still wins over the account's
    asked = (await api.client.post("/api/estimate", json={**body, "cache_ttl_days": 3},
                                   headers=alice)).json()
    assert asked["cached"] is True

    await api.client.patch("/api/me/settings", headers=alice, json={"cache_ttl_days": 3})
    cached_quote = (await api.client.post("/api/estimate", json=body, headers=alice)).json()
    assert cached_quote["cached"] is True
    assert Decimal(cached_quote["total"]) < Decimal(quote["total"])
    reused = await api.client.post("/api/runs",
                                   json={**body, "max_total": cached_quote["total"]},
                                   headers=alice)
    assert reused.status_code == 201, reused.text
    assert reused.json()["status"] == "ok" and reused.json()["reused_from_run_id"] == earlier


async def test_the_analysis_is_written_in_the_account_language_and_length(
    api: ApiHarness, media: MediaLibrary, tmp_path: Path
) -> None:
    alice = api["alice"].headers
    llm_profile = {"profile_id": "alice-llm", "name": "written by the LLM",
                   "components": [{"name": n} for n in FAST],
                   "render": {"engine": "llm", "prompt_version": "rephrase-v1", "locale": "en"}}
    assert (await api.client.put("/api/profiles/alice-llm", json=llm_profile,
                                 headers=alice)).status_code == 200
    clip = media.path("scene_cuts")
    up = await upload(api, "alice", clip, {"title": "Cuts", "tags": ["a"]})
    run = await api.client.post("/api/runs", headers=alice, json={
        "upload_id": up.json()["upload_id"], "profile_id": "alice-llm"})
    assert run.status_code == 201, run.text
    await execute(api, run.json()["run_id"], tmp_path / "run")
    report_url = f"/api/runs/{run.json()['run_id']}/report"

    with openai_server(lambda body, _: (200, {}, completion(echo_statements(body)))) as (
            base_url, seen):
        api.ctx.settings.llm.base_url = base_url
        await api.client.patch("/api/me/settings", headers=alice, json={
            "report_locale": "ru", "report_sentences_min": 20, "report_sentences_max": 24})
        ru = await api.client.get(report_url, headers=alice)
        assert ru.status_code == 200, ru.text
        assert ru.json()["locale"] == "ru"  # the account's language, not the profile's "en"
        assert "Russian" in seen[-1]["messages"][0]["content"]
        assert 20 <= len(ru.json()["sentences"]) <= 24

        await api.client.patch("/api/me/settings", headers=alice, json={
            "report_locale": "en", "report_sentences_min": 20, "report_sentences_max": 20})
        en = await api.client.get(report_url, headers=alice)
        assert en.status_code == 200 and en.json()["locale"] == "en"
        assert len(en.json()["sentences"]) == 20 < len(ru.json()["sentences"])
        assert "English" in seen[-1]["messages"][0]["content"]
        # asked in the request: the request's language, the account's length
        asked = await api.client.get(report_url, params={"locale": "ru"}, headers=alice)
        assert asked.json()["locale"] == "ru" and len(asked.json()["sentences"]) == 20
