"""TrendFlow Studio: the static single-page app a creator opens, served by the API at ``/``.

The page (``static/``: ``index.html``, ``studio.js``, ``charts.js``, ``i18n.js``,
``studio.css``) talks only to the public HTTP API with the user's bearer token; charts are drawn
by the vendored uPlot (``static/vendor/uplot``: version and licence). There is no build step:
the files are served as they are. ``docs/studio.md`` explains the page and how each plot is read.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).parent / "static"


def install_studio(app: FastAPI) -> None:
    """Serve the Studio at ``/``; mount it after every route, which keep their own paths
    (``/api``, ``/docs``, ``/health``, ``/metrics``) because routes are matched first."""
    app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="studio")


def studio_url(api_url: str, *, run_id: str | None = None) -> str:
    """The Studio's address on an API (a run's result page with ``run_id``)."""
    base = api_url.rstrip("/") + "/"
    return base if run_id is None else f"{base}#/runs/{run_id}"
