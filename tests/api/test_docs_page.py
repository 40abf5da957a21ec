"""``/docs`` renders offline: opened in a real headless Chromium (Debian's, driven
by Playwright) against the live app, every asset comes from the app itself, the whole API is
drawn with Swagger's "Authorize" button, and the page logs no console error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.live_api import LiveApi
from tests.web.test_studio import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"Debian's chromium is missing ({CHROMIUM}): `make install` installs it")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _open(browser: Any, url: str) -> tuple[Any, list[str], list[str]]:
    """A page at ``url``; (page, console errors and page errors, requests to other hosts)."""
    page = browser.new_page()
    errors: list[str] = []
    foreign: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r: Any) -> None:
        if r.request.url.startswith(url.rsplit("/", 1)[0]):
            r.continue_()
        else:  # the machine has no internet: a CDN request is the bug this test is about
            foreign.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(url, wait_until="networkidle")
    return page, errors, foreign


def test_swagger_ui_renders_every_operation_from_local_assets(browser: Any,
                                                             live_api: LiveApi) -> None:
    doc = httpx.get(live_api.url + "/openapi.json", timeout=30).json()
    n_ops = sum(len(item) for item in doc["paths"].values())
    page, errors, foreign = _open(browser, live_api.url + "/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "TrendFlow API" in page.inner_text(".swagger-ui .info .title")
    assert page.locator(".opblock").count() == n_ops
    authorize = page.locator("button.authorize")
    assert authorize.count() == 1
    authorize.click()
    page.wait_for_selector(".auth-container input", timeout=10_000)  # the bearer token box
    assert "bearer" in page.inner_text(".auth-container").lower()
    assert foreign == [] and errors == []


def test_redoc_is_not_served(live_api: LiveApi) -> None:
    """ReDoc cannot render offline (its logo comes from a CDN): no half-working page."""
    assert httpx.get(live_api.url + "/redoc", timeout=10).status_code == 404
