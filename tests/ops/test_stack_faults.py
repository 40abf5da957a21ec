"""Faults of the local stack itself, on the real stack (``trendflow up`` with Triton).

One stack for the module, in this order: Triton is killed while a model-backed run is in flight
and the supervisor starts it again (the run finishes ``ok``; the readiness fact says "not ready"
meanwhile); then the supervisor itself is ``kill -9``'d, and the next ``up`` finds the orphans
it recorded (Triton, Ray's agents), stops them and starts cleanly; ``down`` leaves no process
and no temporary folder. Every process signalled here is one this test's stack started.
About 4-5 minutes on a loaded 2-core machine (two stack starts, one with Triton).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.fixtures.postgres import pg_scratch_dir
from tests.fixtures.triton import built_repository
from trendflow import stack
from trendflow.api.client import demo_clip
from trendflow.errors import ModelServingUnavailable
from trendflow.processes import pid_alive
from trendflow.settings import Settings, TritonSettings
from trendflow.triton.readiness import ModelServingProbe
from trendflow.triton.server import read_server

# Whole-stack kill -9 and Triton restart cases: several minutes of real stack start-ups each.
pytestmark = pytest.mark.slow


def _env(data: Path) -> dict[str, str]:
    return {
        "TRENDFLOW_DATA_DIR": str(data),
        "TRENDFLOW_ENV": "test",
        "TRENDFLOW_API__PORT": str(stack._free_port()),
        "TRENDFLOW_API__DASHBOARD_PORT": str(stack._free_port()),
        "TRENDFLOW_TRITON__REPOSITORY": str(built_repository()),
        "TRENDFLOW_RUNTIME__ADMISSION_WINDOW_S": "0.2",
        "TRENDFLOW_RUNTIME__POLL_INTERVAL_S": "0.2",
        # A run outlives a Triton restart when its retry budget covers the restart (about
        # 10-40 s here: every model loads again).
        "TRENDFLOW_RUNTIME__RETRY_ATTEMPTS": "12",
        "TRENDFLOW_RUNTIME__RETRY_BACKOFF_S": "1",
        "TRENDFLOW_RUNTIME__RETRY_BACKOFF_MAX_S": "5",
    }


@pytest.fixture(scope="module")
def live() -> Iterator[dict[str, Any]]:
    data = pg_scratch_dir("trendflow-stackfaults-")  # the embedded PostgreSQL lives in it
    env = _env(data)
    settings = Settings(data_dir=data)
    try:
        try:
            state = stack.up(settings, env=env, triton="on", timeout_s=600)
        except Exception:
            print(stack.log_path(settings).read_text()[-4000:])  # the log goes with the folder
            raise
        yield {"state": state, "settings": settings, "env": env, "data": data}
    finally:
        stack.down(settings)
        shutil.rmtree(data, ignore_errors=True)


def _wait(pred: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout_s:.0f} s: {what}")


def test_triton_killed_mid_run_is_restarted_and_the_run_finishes(
    live: dict[str, Any], tmp_path: Path
) -> None:
    state, settings = live["state"], live["settings"]
    work = Path(state.triton["work_dir"])
    first = read_server(work)
    assert first is not None and pid_alive(first.pid)
    probe = ModelServingProbe(TritonSettings(url=first.grpc_url, protocol="grpc"), ttl_s=0.0)
    assert asyncio.run(probe.ready())

    http = httpx.Client(base_url=state.api_url, timeout=60,
                        headers={"Authorization": f"Bearer {state.admin_token}"})
    clip = demo_clip(tmp_path / "t.mp4", bpm=100.0)
    up = http.post("/api/uploads", content=clip.read_bytes(), headers={
        "X-Filename": "t.mp4", "X-Upload-Meta": json.dumps({"title": "a title to embed"})})
    assert up.status_code == 201, up.text
    body = {"upload_id": up.json()["upload_id"], "cache_ttl_days": 0,
            "profile": {"components": [{"name": "text_embeddings"}]}}
    run = http.post("/api/runs", json=body)
    assert run.status_code == 201, run.text
    run_id = run.json()["run_id"]

    os.kill(first.pid, signal.SIGKILL)  # before the run has reached its model call
    _wait(lambda: not pid_alive(first.pid), 10, "the killed tritonserver to exit")
    with pytest.raises(ModelServingUnavailable) as refused:
        asyncio.run(probe.require_ready(["text_embeddings"]))
    assert refused.value.details["retry_after_s"] > 0

    restarted = _wait(lambda: (info := read_server(work)) and info.pid != first.pid and info,
                      30, "the supervisor to start Triton again")
    assert (restarted.http_port, restarted.grpc_port) == (first.http_port, first.grpc_port)
    st = _wait(lambda: (s := http.get(f"/api/runs/{run_id}/status").json())["status"]
               in ("ok", "error", "cancelled") and s, 240, "the run to finish")
    assert st["status"] == "ok", json.dumps(st["components"])
    assert asyncio.run(probe.ready())
    log = stack.log_path(settings).read_text()
    assert f"triton: pid {first.pid} exited; restart 1/5 on the same ports" in log
    assert f"triton: restarted, pid {restarted.pid}" in log
    recorded = stack.StackState.load(stack.state_path(settings))
    assert recorded is not None and recorded.triton["pid"] == restarted.pid


def test_up_after_a_killed_supervisor_stops_its_orphans(live: dict[str, Any]) -> None:
    settings, env = live["settings"], live["env"]
    state = stack.StackState.load(stack.state_path(settings))
    assert state is not None and state.phase == "ready"
    triton = read_server(Path(state.triton["work_dir"]))
    assert triton is not None
    recorded = {int(pid): started for pid, started in state.ray_processes.items()}
    temp = Path(str(state.ray_temp_dir))

    os.kill(state.supervisor_pid, signal.SIGKILL)
    _wait(lambda: not pid_alive(state.supervisor_pid), 10, "the supervisor to die")
    time.sleep(5)  # what outlives it has had time to notice
    orphans = [pid for pid, started in recorded.items() if _same(pid, started)]
    assert pid_alive(triton.pid), "Triton is expected to outlive its supervisor"
    assert orphans, "Ray's agents are expected to outlive the supervisor"

    again = stack.up(settings, env=env, triton="off", timeout_s=600)
    try:
        assert again.supervisor_pid != state.supervisor_pid
        text = "\n".join(again.recovered)
        assert f"supervisor {state.supervisor_pid}" in text and f"triton {triton.pid}" in text
        assert not pid_alive(triton.pid)
        assert not [pid for pid in orphans if _same(pid, recorded[pid])]
        assert not temp.exists()
        assert again.triton["reason"] == "--triton off"
        assert httpx.get(str(again.api_url) + "/health/live", timeout=10).status_code == 200
    finally:
        lines = stack.down(settings)
    assert not pid_alive(again.supervisor_pid), lines
    assert not [p for p in again.ray_processes if _same(int(p), again.ray_processes[p])]
    assert not Path(str(again.ray_temp_dir)).exists()


def _same(pid: int, started: float) -> bool:
    """``pid`` is still the process that was recorded (not a reused PID)."""
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and abs(proc.create_time() - started) < 0.01
    except psutil.Error:
        return False
