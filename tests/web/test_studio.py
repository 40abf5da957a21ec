"""TrendFlow Studio in a real headless Chromium (Debian's ``chromium``, driven by Playwright),
against the real local stack (``trendflow up``: PostgreSQL, Ray, scheduler, Serve app).

One flow, as a creator goes: sign in, upload a generated clip with its metadata, watch the price
change when a component is toggled, start, follow the progress to ``ok``, see a drawn chart on
every component card, hover one moment and see it in every plot with its frame's thumbnail,
download an NPZ, read the messages of a bad file (415), no credits (402) and too many runs
(429), delete the video. The page's JavaScript must log no error during all of it. Screenshots
of the result page (1440 px and 360 px wide) are written to ``.cache/test-artifacts/studio/``.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from trendflow import stack
from trendflow.api.client import demo_clip
from trendflow.processes import pid_alive
from trendflow.settings import Settings
from trendflow.web import studio_url

CHROMIUM = Path("/usr/bin/chromium")
# What the machine's notes say Chromium needs here as root with no network (docs/studio.md).
CHROMIUM_ARGS = ["--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / ".cache" / "test-artifacts" / "studio"
FAST = ["audio_features", "color_stats", "loudness", "metadata_features", "motion",
        "shot_detection"]
# The browser reports each deliberately refused request as a console error of the network
# layer (not of the page's JavaScript): these, and only these, are expected.
EXPECTED_REFUSALS = ("status of 402", "status of 415", "status of 429")


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"Debian's chromium is missing ({CHROMIUM}): `make install` installs it "
                    "(system-deps, as root), or `apt-get install chromium`")
    return CHROMIUM


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("stack")
    env = {
        "TRENDFLOW_DATA_DIR": str(data),
        "TRENDFLOW_ENV": "test",
        "TRENDFLOW_RUNTIME__ADMISSION_WINDOW_S": "0.2",
        "TRENDFLOW_RUNTIME__POLL_INTERVAL_S": "0.2",
        "TRENDFLOW_API__PORT": str(stack._free_port()),
        "TRENDFLOW_API__DASHBOARD_PORT": str(stack._free_port()),
        "TRENDFLOW_BILLING__RUNS_PER_HOUR_FREE": "0",  # a free account meets 429 at once
    }
    settings = Settings(data_dir=data)
    state = stack.up(settings, env=env, timeout_s=300)
    try:
        yield {"state": state, "data": data}
    finally:
        lines = stack.down(settings)
        assert not pid_alive(state.supervisor_pid), lines


def _account(admin: httpx.Client, email: str, *, subscription: str, credits: int) -> str:
    user = admin.post("/api/admin/users", json={"email": email, "subscription": subscription})
    user.raise_for_status()
    uid = user.json()["user_id"]
    if credits:
        admin.post(f"/api/admin/users/{uid}/topups",
                   json={"amount": credits, "note": "studio test"}).raise_for_status()
    token = admin.post(f"/api/admin/users/{uid}/tokens", json={"name": "studio"})
    token.raise_for_status()
    return str(token.json()["token"])


def _sign_in(page: Any, url: str, token: str) -> None:
    page.goto(url)
    # The page has settled (signed out, or its screen drawn): then sign out of whoever it was.
    page.wait_for_function("document.querySelector('#token') || document.body.dataset.view")
    if page.locator("#signout").is_visible():
        page.click("#signout")
    page.fill("#token", token)
    page.click("form button[type=submit]")
    page.wait_for_selector("#nav:not([hidden])")


def _drawn_pixels(page: Any, selector: str) -> int:
    """Non-transparent pixels of the chart's canvas (uPlot) — proof that lines were drawn."""
    return int(page.eval_on_selector(selector, """box => {
        const c = box.querySelector('canvas');
        if (!c) return 0;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n;
    }"""))


def test_a_creator_analyses_a_clip_in_the_studio(
    chromium: Path, live: dict[str, Any], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    state = live["state"]
    base = studio_url(state.api_url)
    admin = httpx.Client(base_url=state.api_url, timeout=60,
                         headers={"Authorization": f"Bearer {state.admin_token}"})
    tag = uuid.uuid4().hex[:8]
    creator = _account(admin, f"creator-{tag}@example.com", subscription="premium", credits=100)
    broke = _account(admin, f"broke-{tag}@example.com", subscription="premium", credits=0)
    limited = _account(admin, f"limited-{tag}@example.com", subscription="free", credits=100)
    clip = demo_clip(tmp_path / "clip.mp4")
    not_video = tmp_path / "notes.mp4"
    not_video.write_bytes(b"these are notes, not a video\n" * 200)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), headless=True,
                                     args=CHROMIUM_ARGS)
        context = browser.new_context(locale="en-US", viewport={"width": 1440, "height": 900},
                                      accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.on("console", lambda m: errors.append(f"console: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        page.on("dialog", lambda dialog: dialog.accept())
        try:
            # sign in: the token lives in sessionStorage only, never in the URL
            _sign_in(page, base, creator)
            assert "100.00" in page.text_content("#balance")
            assert creator not in page.url
            assert page.evaluate("sessionStorage.getItem('trendflow.token')") == creator

            # a bad file: 415 in words
            page.set_input_files("#file", str(not_video))
            page.click("#upload")
            page.wait_for_selector("#error:not([hidden])")
            assert page.get_attribute("#error", "data-code") == "unsupported_media"
            assert "not a video we can read" in page.text_content("#error")

            # upload the clip with its metadata; the price appears before the run starts
            page.set_input_files("#file", str(clip))
            page.fill("#title", "Studio test clip")
            page.fill("#description", "Four scenes, cut every two seconds.")
            page.fill("#tags", "test, studio")
            page.click("#upload")
            page.wait_for_function("document.querySelector('#upload-info').textContent"
                                   ".startsWith('Uploaded')")
            page.wait_for_selector("#estimate[data-total]")
            full_price = page.get_attribute("#estimate", "data-total")
            page.uncheck("#toggles input[value=motion]")
            page.wait_for_function(f"document.querySelector('#estimate').dataset.total !== "
                                   f"'{full_price}'")
            assert "motion" not in (page.get_attribute("#estimate", "data-components") or "")
            page.check("#toggles input[value=motion]")
            page.wait_for_function(f"document.querySelector('#estimate').dataset.total === "
                                   f"'{full_price}'")

            # start, follow the progress (or land on the result when it was quick)
            page.click("#start")
            page.wait_for_url("**/#/runs/*")
            run_id = page.url.rsplit("/", 1)[1]
            page.wait_for_selector("#cards", timeout=240_000)
            assert page.text_content("#run-status") == "ok"

            # every component: a card, status ok, a chart that holds and draws data
            for name in FAST:
                card = f"section.card[data-component={name}]"
                assert page.text_content(f"{card} .status") == "ok", name
                chart = f"{card} .chart"
                points = int(page.get_attribute(chart, "data-points") or 0)
                assert points > 0, f"{name}: no data points"
                if page.get_attribute(chart, "data-chart") == "time":
                    assert _drawn_pixels(page, chart) > 0, f"{name}: nothing drawn"
                else:
                    assert page.locator(f"{chart} rect").count() > 0, name
            page.wait_for_selector("#report p")
            assert len(page.text_content("#report")) > 40

            # hover one moment in the motion plot: every time plot shows the same moment
            over = page.locator("section[data-component=motion] .u-over")
            box = over.bounding_box()
            assert box is not None
            over.hover(position={"x": box["width"] * 0.6, "y": box["height"] / 2})
            page.wait_for_function("document.querySelector("
                                   "'section[data-component=loudness] .chart').dataset.cursorT")
            times = {name: float(page.get_attribute(f"section[data-component={name}] .chart",
                                                    "data-cursor-t") or "nan")
                     for name in ("motion", "loudness", "shot_detection", "color_stats")}
            assert all(abs(v - times["motion"]) < 0.05 for v in times.values()), times
            assert 3.0 < times["motion"] < 6.5, times  # 60 % of an 8 s clip
            assert f"{times['motion']:.2f}" in page.text_content("#hover-time")
            # the frames archive still holds the run's frames: the moment's picture appears
            page.wait_for_function("(() => { const i = document.querySelector('#frame-thumb');"
                                   " return i && !i.hidden && i.complete"
                                   " && i.naturalWidth > 0; })()")
            shown_t = float(page.get_attribute("#frame-thumb", "data-t") or "nan")
            assert abs(shown_t - times["motion"]) < 0.5, (shown_t, times)

            # screenshots of the result page: desktop and a 360 px phone
            page.mouse.move(0, 0)
            page.screenshot(path=str(ARTIFACTS / "studio-desktop.png"), full_page=True)
            page.set_viewport_size({"width": 360, "height": 780})
            try:  # the charts fit themselves to the new width on the next frame
                page.wait_for_function("document.documentElement.scrollWidth <= 360",
                                       timeout=5_000)
            except Exception:
                width = page.evaluate("document.documentElement.scrollWidth")
                raise AssertionError(f"the page is {width} px wide at 360 px") from None
            page.screenshot(path=str(ARTIFACTS / "studio-360.png"), full_page=True)
            page.set_viewport_size({"width": 1440, "height": 900})

            # download an NPZ: the full-resolution file the API serves
            with page.expect_download() as info:
                page.click("button[data-npz=shot_detection]")
            saved = tmp_path / "shot_detection.npz"
            info.value.save_as(saved)
            with np.load(io.BytesIO(saved.read_bytes()), allow_pickle=False) as npz:
                assert int(npz["n_cuts"]) == 3  # scenes change at 2, 4 and 6 s

            # the same words in Russian
            page.select_option("#locale", "ru")
            page.wait_for_function("document.querySelector('#nav a').textContent"
                                   " === 'Новый анализ'")
            page.select_option("#locale", "en")
            page.wait_for_selector("#cards")

            # delete the video (the confirmation is accepted): its run is gone
            page.click("#delete-video")
            page.wait_for_selector("#deleted")
            assert "1 run(s)" in page.text_content("#deleted")
            gone = httpx.get(f"{state.api_url}/api/runs/{run_id}", timeout=30,
                             headers={"Authorization": f"Bearer {creator}"})
            assert gone.status_code == 404

            # no credits: 402 with the balance; a free account over its runs: 429 with the wait
            for token, code, words in ((broke, "insufficient_credits", "Not enough credits"),
                                       (limited, "rate_limited", "Too many runs")):
                _sign_in(page, base, token)
                # an upload (free) of the clip: a YouTube URL is priced from YouTube's metadata,
                # which this machine cannot reach
                page.set_input_files("#file", str(clip))
                page.click("#upload")
                page.wait_for_function("document.querySelector('#upload-info').textContent"
                                       ".startsWith('Uploaded')")
                page.wait_for_selector("#estimate[data-total]")
                page.click("#start")
                page.wait_for_selector("#error:not([hidden])")
                assert page.get_attribute("#error", "data-code") == code
                text = page.text_content("#error")
                assert words in text, text
                if code == "insufficient_credits":
                    assert "0.00 available" in text, text
                else:
                    assert "try again in 3600 s" in text, text
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
            raise
        finally:
            context.close()
            browser.close()
    unexpected = [e for e in errors if not any(r in e for r in EXPECTED_REFUSALS)]
    assert not unexpected, unexpected
