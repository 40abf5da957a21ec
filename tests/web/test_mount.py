"""The Studio is served at ``/`` by the API app itself, without shadowing any route."""

from __future__ import annotations

from tests.fixtures.api import ApiHarness


async def test_the_studio_is_served_beside_every_route(api: ApiHarness) -> None:
    page = await api.client.get("/")
    assert page.status_code == 200 and "TrendFlow Studio" in page.text
    assert "https://" not in page.text  # no CDN: everything it loads is served here
    script = await api.client.get("/vendor/uplot/uPlot.iife.min.js")
    assert script.status_code == 200 and "uPlot" in script.text
    assert (await api.client.get("/studio.js")).headers["content-type"].startswith(
        "text/javascript")
    # the routes keep their paths and their JSON errors
    assert (await api.client.get("/health/live")).json() == {"status": "ok"}
    assert (await api.client.get("/metrics")).status_code == 200
    assert (await api.client.get("/docs")).status_code == 200
    assert (await api.client.get("/api/me")).json()["code"] == "unauthorized"
    me = await api.client.get("/api/me", headers=api["alice"].headers)
    assert me.status_code == 200 and me.json()["email"] == "alice@example.com"
    # only the page's files: not the package's Python source
    assert (await api.client.get("/__init__.py")).status_code == 404
