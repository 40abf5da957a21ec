"""``/docs`` (Swagger UI) served with its assets from the package itself.

FastAPI's default pages load Swagger UI and ReDoc from public CDNs, so on a machine without
internet ``/docs`` stays blank. Swagger UI's assets are vendored in
``trendflow/api/static/docs/`` (npm ``swagger-ui-dist``, version below, with its licence) and
served under ``/docs/assets``; a test opens the page in a headless Chromium. There is no
``/redoc``: ReDoc 2.x loads its logo from a CDN whatever the page says, and 3.x ships only an
ES module that FastAPI's ReDoc page cannot load.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_DIR = Path(__file__).parent / "static" / "docs"
ASSETS_URL = "/docs/assets"
SWAGGER_UI_VERSION = "5.35.0"


def install_docs(app: FastAPI) -> None:
    """Add ``/docs`` and its assets to ``app`` (made with ``docs_url=None, redoc_url=None``)."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    title = f"{app.title} — docs"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=title,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )
