"""End to end over real HTTP on the real local stack (``trendflow up``: embedded PostgreSQL,
local store, Ray head with dashboard, scheduler, Serve app), one stack for the module."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.api.listeners import LOOPBACK, owner_of, stack_listeners
from trendflow import stack
from trendflow.api.client import demo_clip
from trendflow.contracts.keys import run_prefix
from trendflow.contracts.validate import validate_run
from trendflow.processes import pid_alive
from trendflow.settings import Settings
from trendflow.stack_cli import _print_state
from trendflow.storage.local import LocalStore


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("stack")
    ports = {"TRENDFLOW_API__PORT": str(stack._free_port()),
             "TRENDFLOW_API__DASHBOARD_PORT": str(stack._free_port())}
    env = {
        "TRENDFLOW_DATA_DIR": str(data),
        "TRENDFLOW_ENV": "test",
        "TRENDFLOW_RUNTIME__ADMISSION_WINDOW_S": "0.2",
        "TRENDFLOW_RUNTIME__POLL_INTERVAL_S": "0.2",
        **ports,
    }
    settings = Settings(data_dir=data)
    state = stack.up(settings, env=env, timeout_s=300)
    try:
        yield {"state": state, "settings": settings, "env": env, "data": data}
    finally:
        lines = stack.down(settings)
        assert not pid_alive(state.supervisor_pid), lines


def _client(live: dict[str, Any], token: str) -> httpx.Client:
    return httpx.Client(base_url=live["state"].api_url,
                        headers={"Authorization": f"Bearer {token}"}, timeout=60)


def test_status_shows_every_piece(live: dict[str, Any]) -> None:
    ok, rows = stack.status(live["settings"])
    pieces = {r[0]: r[1] for r in rows}
    assert ok, rows
    assert pieces["postgres"] == "up" and pieces["api"] == "up"
    assert pieces["scheduler"] == "up" and pieces["ray"] == "up"
    assert pieces["triton"] == "skipped"  # `fast` has no model-backed component
    docs = httpx.get(live["state"].docs_url, timeout=10)
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_stack_listens_on_loopback_only(live: dict[str, Any]) -> None:
    state = live["state"]
    listeners = stack_listeners(state)
    api_port = int(live["env"]["TRENDFLOW_API__PORT"])
    assert api_port in {lst.port for lst in listeners}  # it sees the stack's own sockets
    exposed = [lst for lst in listeners if lst.ip not in LOOPBACK]
    assert not exposed, f"listening beyond loopback: {exposed}"


def test_up_prints_the_configured_api_url(
    live: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    state = live["state"]
    port = int(live["env"]["TRENDFLOW_API__PORT"])
    assert state.api_url == f"http://127.0.0.1:{port}"
    # Direct ingress (the default): the API replica itself answers there, not Serve's proxy.
    assert owner_of(state, port).process.startswith("ray::ServeRepl")
    assert state.proxy_url and state.proxy_url != state.api_url
    _print_state(state)
    out = capsys.readouterr().out
    assert f"API:        http://127.0.0.1:{port}\n" in out
    assert f"Serve proxy: {state.proxy_url}" in out
    for url in (state.api_url, state.proxy_url):  # both reach the same app
        assert httpx.get(url + "/api/me", timeout=10).json()["code"] == "unauthorized"


def test_user_flow_over_http(live: dict[str, Any], tmp_path: Path) -> None:
    admin = _client(live, live["state"].admin_token)
    user = admin.post("/api/admin/users", json={"email": "e2e@example.com"}).json()
    token = admin.post(f"/api/admin/users/{user['user_id']}/tokens", json={"name": "e2e"}).json()
    top = admin.post(f"/api/admin/users/{user['user_id']}/topups",
                     json={"amount": "50", "note": "e2e credits"})
    assert top.status_code == 200, top.text
    http = _client(live, token["token"])
    before = http.get("/api/me").json()
    assert Decimal(before["balance"]) == 50

    clip = demo_clip(tmp_path / "e2e.mp4", bpm=100.0)
    up = http.post("/api/uploads", content=clip.read_bytes(),
                   headers={"X-Filename": "e2e.mp4", "X-Upload-Meta": json.dumps({"title": "e2e"})})
    assert up.status_code == 201, up.text
    body = {"upload_id": up.json()["upload_id"], "profile_id": "fast"}
    est = http.post("/api/estimate", json=body).json()
    run = http.post("/api/runs", json=body, headers={"Idempotency-Key": "e2e-1"})
    assert run.status_code == 201, run.text
    run_id = run.json()["run_id"]

    deadline = time.monotonic() + 120
    while True:
        st = http.get(f"/api/runs/{run_id}/status").json()
        if st["status"] in ("ok", "error", "cancelled") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert st["status"] == "ok", st
    assert {c["status"] for c in st["components"]} <= {"ok", "empty"}

    res = http.get(f"/api/runs/{run_id}").json()
    shots = res["components"]["shot_detection"]["keys"]
    assert shots["n_cuts"]["value"] == 3  # scenes change at 2, 4 and 6 s
    tempo = res["components"]["audio_features"]["keys"]["tempo_bpm"]["value"]
    assert abs(tempo - 100) < 5
    npz = http.get(f"/api/runs/{run_id}/components/loudness.npz")
    arrays = np.load(io.BytesIO(npz.content), allow_pickle=False)
    assert float(arrays["integrated_lufs"]) < 0

    report = http.get(f"/api/runs/{run_id}/report").json()
    assert report["engine"] == "template"
    assert any("3 cuts" in s for s in report["sentences"])

    store = LocalStore(Path(live["state"].store["location"]))
    problems = asyncio.run(validate_run(
        store, run_prefix(res["run"]["platform_id"], res["run"]["video_id"], run_id)))
    assert problems == []

    after = http.get("/api/me").json()
    spent = Decimal(before["balance"]) - Decimal(after["balance"])
    assert Decimal(0) < spent <= Decimal(str(est["total"]))
    assert Decimal(after["reserved"]) == 0

    # Right to deletion: the user's runs, files and upload of the video are gone.
    video_id = res["run"]["video_id"]
    gone = http.delete(f"/api/videos/upload/{video_id}")
    assert gone.status_code == 200, gone.text
    assert gone.json()["runs_deleted"] == 1 and gone.json()["video_row_deleted"]
    assert http.get(f"/api/runs/{run_id}").json()["code"] == "run_not_found"
    assert asyncio.run(store.list(f"result_store/upload/{video_id}/")) == []


def test_analyze_command_uses_the_running_stack(live: dict[str, Any], tmp_path: Path) -> None:
    clip = demo_clip(tmp_path / "cli.mp4", bpm=140.0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRENDFLOW_")}
    out = subprocess.run(
        [sys.executable, "-m", "trendflow.cli", "analyze", str(clip)],
        env={**env, **live["env"]}, capture_output=True, text=True, timeout=180,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "starting one" not in out.stdout  # it used the stack of this module
    assert "validation: passed" in out.stdout
    assert "shot_detection: n_cuts = 3" in out.stdout
    assert "artifacts: " + str(live["data"]) in out.stdout
