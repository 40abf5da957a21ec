"""Operators' and creators' paths on the real local stack (``trendflow up``: embedded PostgreSQL,
local store, Ray head with its dashboard and job agent, scheduler, Serve app), one stack for
the module:

- a short video (20 s) end to end through the HTTP API, valid, its peak memory reported;
- the counters and histograms of the API's ``/metrics`` and of Ray's metrics endpoint move
  after a real run;
- ``ray job submit`` of ``trendflow.jobs.retention`` and ``trendflow.jobs.reprocess`` to the
  stack's dashboard: each job ``SUCCEEDED`` and did what it says.

Measured on the 2-core machine under a load average of ~24 (other processes): the
module about 7 minutes, most of it the short run (~174 s there).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from trendflow import stack
from trendflow.api.client import AnalysisResult, analyze, demo_clip
from trendflow.processes import pid_alive
from trendflow.progress import RunProgress
from trendflow.settings import Settings


@dataclass
class Live:
    state: stack.StackState
    settings: Settings
    env: dict[str, str]
    lines: list[str]
    runs: dict[str, tuple[AnalysisResult, float]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data = tmp_path_factory.mktemp("stack")
    env = {
        "TRENDFLOW_DATA_DIR": str(data),
        "TRENDFLOW_ENV": "test",
        "TRENDFLOW_RUNTIME__ADMISSION_WINDOW_S": "0.2",
        "TRENDFLOW_RUNTIME__POLL_INTERVAL_S": "0.2",
        "TRENDFLOW_API__PORT": str(stack._free_port()),
        "TRENDFLOW_API__DASHBOARD_PORT": str(stack._free_port()),
    }
    settings = Settings(data_dir=data)
    lines: list[str] = []
    state = stack.up(settings, env=env, timeout_s=300, on_line=lines.append)
    try:
        yield Live(state, settings, env, lines)
    finally:
        out = stack.down(settings)
        assert not pid_alive(state.supervisor_pid), out


class _PeakMemory:
    """Sums the PSS of the supervisor's process tree once a second; ``peak_mb`` afterwards."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_mb = pid, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        root = psutil.Process(self.pid)
        while not self._stop.wait(1.0):
            total = 0
            for p in [root, *root.children(recursive=True)]:
                try:
                    total += p.memory_full_info().pss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
            self.peak_mb = max(self.peak_mb, total / 2**20)

    def __enter__(self) -> _PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _analyse(live: Live, name: str, path: Path) -> tuple[AnalysisResult, float, float]:
    assert live.state.api_url and live.state.admin_token
    with _PeakMemory(live.state.supervisor_pid) as mem:
        started = time.monotonic()
        res = analyze(str(path), api_url=live.state.api_url, token=live.state.admin_token,
                      profile="fast", settings=stack.local_settings(live.settings),
                      timeout_s=1500, out=lambda _: None,
                      progress=RunProgress(sys.stderr, rich=False))
        wall = time.monotonic() - started
    live.runs[name] = (res, mem.peak_mb)
    print(f"\n{name}: {res.status} in {wall:.1f} s, peak PSS {mem.peak_mb:.0f} MB", flush=True)
    return res, wall, mem.peak_mb


def test_up_reported_each_piece_as_it_started(live: Live) -> None:
    text = "\n".join(live.lines)
    for piece in ("postgres:", "store:", "triton: not started", "ray:", "scheduler:", "api:"):
        assert piece in text, live.lines


def test_short_video_end_to_end(live: Live, tmp_path: Path) -> None:
    """20 s, 192×108."""
    clip = demo_clip(tmp_path / "short.mp4", duration_s=20.0)
    res, _, _ = _analyse(live, "short", clip)
    assert res.ok, (res.status, res.error, res.problems)


def test_counters_move_after_a_real_run(live: Live) -> None:
    assert "short" in live.runs, "needs the short run"
    api = live.state.api_url
    assert api and live.state.ray_metrics_url
    before = _series(httpx.get(api + "/metrics", timeout=10).text)
    r = httpx.get(f"{api}/api/runs/{uuid.uuid4()}",
                  headers={"Authorization": f"Bearer {live.state.admin_token}"}, timeout=10)
    assert r.status_code == 404
    after = _series(httpx.get(api + "/metrics", timeout=10).text)
    key = 'trendflow_errors_total{code="run_not_found"}'
    assert after.get(key, 0) == before.get(key, 0) + 1
    # The scheduler and the component actors report through Ray's metrics agent (every ~10 s).
    deadline = time.monotonic() + 60
    while True:
        ray = _series(httpx.get(live.state.ray_metrics_url, timeout=10).text)
        runs = sum(v for k, v in ray.items() if k.startswith("ray_trendflow_runs_total")
                   and 'status="ok"' in k)
        durations = sum(v for k, v in ray.items()
                        if k.startswith("ray_trendflow_component_duration_seconds_count"))
        if runs >= 1 and durations >= 6 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert runs >= 1 and durations >= 6, sorted(k for k in ray if "trendflow" in k)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) ([0-9.eE+-]+|NaN|\+Inf)$")


def _series(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if (m := _SAMPLE.match(line)) is not None:
            out[_canonical(m.group(1))] = float(m.group(2))
    return out


def _canonical(name: str) -> str:
    """Labels in sorted order, Ray's extra labels (node, session …) kept."""
    if "{" not in name:
        return name
    base, labels = name[:-1].split("{", 1)
    parts = sorted(re.findall(r'[a-zA-Z_]+="[^"]*"', labels))
    return base + "{" + ",".join(parts) + "}"


def _submit(live: Live, *job: str) -> str:
    """``ray job submit`` to the stack's dashboard; its output (fails unless SUCCEEDED)."""
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    runtime_env = {"env_vars": {k: v for k, v in live.env.items()
                                if k.startswith("TRENDFLOW_")}}
    cmd = [str(Path(sys.executable).parent / "ray"), "job", "submit",
           "--address", str(live.state.dashboard_url),
           "--runtime-env-json", json.dumps(runtime_env), "--", "python", "-m", *job]
    # Ray's head answers 500 "No available agent" until a node's job agent has registered with
    # it, which can take a while after the stack is ready on a busy machine: wait for it.
    deadline = time.monotonic() + 120
    while True:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        said = out.stdout + out.stderr
        if out.returncode == 0 or "No available agent" not in said or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert out.returncode == 0, said[-6000:]
    assert re.search(r"Job '\S+' succeeded", said), said[-3000:]
    return said


def test_retention_job_submitted_to_ray_deletes_orphan_frames(live: Live) -> None:
    orphan = live.settings.store_root / "frames" / str(uuid.uuid4())
    orphan.mkdir(parents=True)
    (orphan / "chunk-0.npy").write_bytes(b"\0" * 128)
    _submit(live, "trendflow.jobs.retention", "--delete-orphans")
    assert not orphan.exists()


def test_reprocess_job_submitted_to_ray_queues_and_runs_the_video(live: Live) -> None:
    assert "short" in live.runs, "needs the short run"
    res = live.runs["short"][0]
    assert res.artifacts is not None
    video_dir = Path(res.artifacts).parent
    manifests = sorted(video_dir.glob("*/manifest.json"))
    assert len(manifests) == 1
    _submit(live, "trendflow.jobs.reprocess", "--video-ids", video_dir.name,
            "--profile", "fast")
    deadline = time.monotonic() + 180
    while True:
        done = [m for m in video_dir.glob("*/manifest.json")
                if json.loads(m.read_text())["run"]["status"] == "ok"]
        if len(done) == 2 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert len(done) == 2  # the job's run went through the scheduler and finished ok
    new = next(m for m in done if m not in manifests)
    assert json.loads(new.read_text())["run"]["profile_id"] == "fast"
