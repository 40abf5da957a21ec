"""The render stage of an ``engine: llm`` run on the Ray runtime, against a real loopback HTTP
server speaking the OpenAI protocol: ``/status`` shows ``rendering``, the text is cached when the
run ends and charged as the ``render`` line; a failing LLM leaves the run ``ok`` with its
components' results, the render's code, and the render's price released."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

from tests.actors.conftest import Runtime
from tests.render.helpers import completion, echo_statements, openai_server
from trendflow.api.runs import run_status
from trendflow.billing.pricing import VideoParams
from trendflow.db.repositories import billing as billing_repo
from trendflow.db.repositories import components as rc_repo
from trendflow.db.repositories import profiles as profiles_repo
from trendflow.db.repositories import render_cache as cache_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.db.repositories import users as users_repo
from trendflow.pipeline.types import VideoMeta
from trendflow.render.service import run_report
from trendflow.runs.admission import create_billed_run
from trendflow.runs.request import resolve_profile
from trendflow.runs.sources import upload_source
from trendflow.storage.factory import open_store

COMPONENTS = ("metadata_features", "shot_detection", "color_stats", "motion", "loudness",
              "audio_features")


async def _user(conn: Any, locale: str) -> users_repo.User:
    from trendflow.billing.ledger import top_up

    user = await users_repo.create_user(conn, email=f"{uuid.uuid4().hex[:10]}@example.com")
    async with conn.transaction():
        await top_up(conn, user_id=user.user_id, amount=Decimal(200), reason="test credits",
                     actor="tests")
    await users_repo.update_settings(conn, user_id=user.user_id, report_locale=locale,
                                     report_sentences_min=20, report_sentences_max=24)
    return await users_repo.get_user(conn, user_id=user.user_id)


async def _paid_run(rt: Runtime, conn: Any, user: users_repo.User) -> uuid.UUID:
    profile = await resolve_profile(conn, user_id=None, profile_id="ray-llm",
                                    llm=rt.settings.llm)
    clip = rt.clip
    billed = await create_billed_run(
        conn, user_id=user.user_id, profile=profile, platform_id="upload",
        video_id="up-" + uuid.uuid4().hex[:16],
        source=upload_source(rt.upload, VideoMeta(title="bench clip")),
        video=VideoParams(duration_s=clip.duration_s, width=clip.width or 160,
                          height=clip.height or 96),
        settings=rt.settings)
    assert {line.component_name for line in billed.estimate.components} == {*COMPONENTS,
                                                                            "render"}
    return billed.run.run_id


async def test_render_stage_caches_the_text_and_a_failed_render_keeps_the_run(
    runtime: Runtime, start_scheduler
) -> None:
    release = threading.Event()

    def answer(body: dict[str, Any], n: int) -> tuple[int, dict[str, str], bytes]:
        if "Russian" in body["messages"][0]["content"]:
            return 500, {}, b'{"error": "the model crashed"}'
        release.wait(60)  # holds the English render until the test has seen the stage
        return 200, {}, completion(echo_statements(body))

    async with runtime.pool.acquire() as conn:
        await profiles_repo.save_profile(conn, profile=profiles_repo.Profile(
            profile_id="ray-llm", name="Ray render tests",
            sampling={"fps": 12.0, "height": 96},
            render={"engine": "llm", "prompt_version": "rephrase-v1", "locale": "en"},
            components=tuple(profiles_repo.ProfileComponent(c) for c in COMPONENTS)))
        writer, failing = await _user(conn, "en"), await _user(conn, "ru")
        good = await _paid_run(runtime, conn, writer)
        bad = await _paid_run(runtime, conn, failing)

    with openai_server(answer) as (base_url, seen):
        runtime.settings.llm.base_url = base_url
        runtime.settings.llm.backoff_s = 0.05
        start_scheduler(runtime.settings)
        deadline = time.monotonic() + 240
        while True:  # what GET /api/runs/{id}/status answers, while the text is being written
            async with runtime.pool.acquire() as conn:
                status = await run_status(conn, run_id=good, user=writer)
            if status.stage == "rendering" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert status.stage == "rendering" and status.status == "running", status
        comps = {c.name: c.status for c in status.components}
        assert comps == {**dict.fromkeys(COMPONENTS, "ok"), "render": "running"}
        assert status.progress < 1.0
        release.set()
        rows = await runtime.wait([str(good), str(bad)], timeout_s=120)
        requests_after_run = len(seen)

        store = open_store(runtime.settings)
        async with runtime.pool.acquire() as conn:
            ok_run = rows[str(good)]
            assert (ok_run.status, ok_run.stage) == ("ok", "ok") and not ok_run.warnings
            assert await cache_repo.count_renders(conn, run_id=good) == 1
            report = await run_report(conn, store, runtime.settings, ok_run)
            assert report["cached"] is True and len(seen) == requests_after_run
            assert report["locale"] == "en" and 20 <= len(report["sentences"]) <= 24
            render = await rc_repo.get_run_component(conn, run_id=good, component_name="render")
            assert render.status == "ok" and render.model == runtime.settings.llm.model_name
            holds = await billing_repo.run_holds(conn, run_id=good)
            assert holds["render"].reserved > 0
            assert holds["render"].charged == holds["render"].reserved

            failed_run = await runs_repo.get_run(conn, run_id=bad)
            assert failed_run.status == "ok", failed_run.error
            assert failed_run.warnings == ["render failed: llm_unavailable"]
            status = await run_status(conn, run_id=bad, user=failing)
            comps = {c.name: c.status for c in status.components}
            assert comps == {**dict.fromkeys(COMPONENTS, "ok"), "render": "error"}
            [render_out] = [c for c in status.components if c.name == "render"]
            assert render_out.error is not None and render_out.error["code"] == "llm_unavailable"
            assert await cache_repo.count_renders(conn, run_id=bad) == 0
            holds = await billing_repo.run_holds(conn, run_id=bad)
            assert holds["render"].charged == 0 and holds["render"].released > 0
            assert all(holds[c].charged == holds[c].reserved > 0 for c in COMPONENTS)
    russian = [b for b in seen if "Russian" in b["messages"][0]["content"]]
    assert len(russian) == 3  # one request and the gateway's two retries on a 5xx
