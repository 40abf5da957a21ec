"""Operators' and creators' paths on the real local stack (``trendflow up``: embedded PostgreSQL,
local store, Ray head with its dashboard and job agent, scheduler, Serve app), one stack for
the module:

- videos of three lengths end to end through the HTTP API with the ``fast`` profile, each valid
  with every frame of its analysis timeline (12 fps, 320 px high) analysed, within a memory
  budget: a short one (20 s), a medium one (2 min) and a 20-minute one (the longest accepted;
  its source is 128×72 at 4 fps, so it is made in seconds — the timeline is the same);
- every curl example of the README and docs/ run with curl, in order, against the stack;
- the counters and histograms of the API's ``/metrics`` and of Ray's metrics endpoint move
  after a real run;
- ``ray job submit`` of ``trendflow.jobs.retention`` and ``trendflow.jobs.reprocess`` to the
  stack's dashboard: each job ``SUCCEEDED`` and did what it says.

Measured on the 2-core machine (load average 0–4): the module 2.5–4 minutes — the stack's
start 15–29 s, the short run 22–27 s, the medium one 11–18 s, the 20-minute one 78–86 s (plus
8–23 s to make its clip), the two ``ray job submit`` cases 14–84 s (the job agent's
registration).
Under a load average of ~24 (a whole test suite beside it) the short run alone took ~174 s.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest

from trendflow import stack
from trendflow.api.client import AnalysisResult, analyze, demo_clip
from trendflow.api.webhooks import SIGNATURE_HEADER, verify
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
    webhooks: list[dict[str, object]] = field(default_factory=list)


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
        # The docs' curl examples send a callback_url: here it is a receiver on loopback.
        "TRENDFLOW_API__WEBHOOK_KEY": "operator-paths-webhook-key",
        "TRENDFLOW_API__WEBHOOK_ALLOW_LOOPBACK": "true",
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


# The whole stack (PostgreSQL, Ray head and workers, scheduler, Serve) while it analyses,
# measured on the 2-core machine: 2.05–2.07 GB (short), 2.21–2.23 GB (medium), 2.54–2.60 GB
# (20 min).
# Frames stream chunk by chunk; what grows with the length is the audio track, decoded whole
# at each analysis rate, and the per-frame series.
PEAK_BUDGET_MB = 4096
LENGTH_GROWTH_MB = 1024  # allowed above the short run's peak, for the 20-minute video


def _assert_whole_timeline(res: AnalysisResult, duration_s: float, fps: float) -> None:
    """The run is valid, its manifest has the video's length and motion covers every frame of
    the analysis timeline (``duration × fps``): nothing was cut short."""
    assert res.ok, (res.status, res.error, res.problems)
    assert res.artifacts is not None
    run_dir = Path(res.artifacts)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert abs(manifest["video"]["duration_s"] - duration_s) < 0.5, manifest["video"]
    assert {c["status"] for c in manifest["components"].values()} == {"ok"}, manifest
    with np.load(run_dir / "motion" / "motion.npz", allow_pickle=False) as motion:
        stamps = motion["timestamps_s"]
    assert abs(len(stamps) - round(duration_s * fps)) <= 1, len(stamps)
    assert stamps[-1] > duration_s - 1.0


def test_short_video_end_to_end(live: Live, tmp_path: Path) -> None:
    """20 s, 192×108."""
    clip = demo_clip(tmp_path / "short.mp4", duration_s=20.0)
    res, _, peak = _analyse(live, "short", clip)
    _assert_whole_timeline(res, 20.0, fps=12)
    assert peak < PEAK_BUDGET_MB


def test_medium_video_end_to_end(live: Live, tmp_path: Path) -> None:
    """2 min, 192×108, the ``fast`` profile like the short one."""
    clip = demo_clip(tmp_path / "medium.mp4", duration_s=120.0)
    res, _, peak = _analyse(live, "medium", clip)
    _assert_whole_timeline(res, 120.0, fps=12)
    assert peak < PEAK_BUDGET_MB


LONG_S = 20 * 60 - 1.0  # the longest video accepted is 20 min


def test_twenty_minute_video_finishes(live: Live, tmp_path: Path) -> None:
    """20 min, a 128×72 source at 4 fps: 14,388 frames of the 12 fps, 320 px timeline."""
    assert "short" in live.runs, "needs the short run"
    clip = demo_clip(tmp_path / "long.mp4", duration_s=LONG_S, fps=4.0, size=(128, 72))
    res, _, peak = _analyse(live, "long", clip)
    _assert_whole_timeline(res, LONG_S, fps=12)
    assert peak < PEAK_BUDGET_MB
    assert peak < live.runs["short"][1] + LENGTH_GROWTH_MB, (peak, live.runs["short"][1])


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


DOCS = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
_PLACEHOLDER = re.compile(r"<[a-z_]+>")


def doc_curl_examples() -> list[tuple[str, str]]:
    """``(file, command)`` of every curl command in the README's and docs/'s code blocks, in
    reading order, continuation lines joined."""
    out = []
    for md in [DOCS / "README.md", *sorted((DOCS / "docs").glob("*.md"))]:
        for block in _FENCE.findall(md.read_text()):
            for command in block.replace("\\\n", " ").splitlines():
                if command.strip().startswith("curl "):
                    out.append((md.relative_to(DOCS).as_posix(), " ".join(command.split())))
    return out


def test_json_examples_say_they_send_json() -> None:
    examples = doc_curl_examples()
    assert examples
    for where, command in examples:
        if re.search(r"\s(-d|--data|--data-raw)\s", command):
            assert "Content-Type: application/json" in command, (where, command)


class _Receiver(http.server.BaseHTTPRequestHandler):
    """Collects the webhooks POSTed to it into ``server.received``."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((dict(self.headers), body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook_receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        thread.join()


def test_the_docs_curl_examples_work(
    live: Live, tmp_path: Path,
    webhook_receiver: tuple[str, list[tuple[dict[str, str], bytes]]],
) -> None:
    """Each example runs as written, with curl, in the docs' order: the API address, the token
    ``$T``, the ids answered by earlier examples (``<id>``, ``<run_id>``) and the callback URL
    (a receiver here) substituted; an HTTP error fails it (``--fail-with-body``). The status
    example is repeated until the run has finished, as its comment says."""
    api, token = live.state.api_url, live.state.admin_token
    assert api and token
    hook_url, received = webhook_receiver
    demo_clip(tmp_path / "clip.mp4", duration_s=8.0)  # the file the upload example sends
    ids: dict[str, str] = {}
    answers = []
    for where, command in doc_curl_examples():
        text = (command.replace("localhost:8080", api).replace("$T", token)
                .replace("https://example.com/hook", hook_url))
        for name, value in ids.items():
            text = text.replace(f"<{name}>", value)
        assert not _PLACEHOLDER.search(text), f"{where}: no value for it yet: {command}"
        args = [*shlex.split(text), "--silent", "--show-error", "--fail-with-body"]
        deadline = time.monotonic() + 600
        while True:
            out = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=120)
            assert out.returncode == 0, f"{where}: {command}\n{out.stdout}\n{out.stderr}"
            if "/status" not in text or time.monotonic() > deadline:
                break
            status = json.loads(out.stdout)["status"]
            if status in ("ok", "error", "partial", "cancelled"):
                break
            time.sleep(2)
        answer: dict[str, Any] = json.loads(out.stdout) if out.stdout.startswith("{") else {}
        answers.append((command, answer))
        if "upload_id" in answer:
            ids["id"] = answer["upload_id"]
        if "run_id" in answer and "created" in answer:
            ids["run_id"] = answer["run_id"]
    assert [a["status"] for c, a in answers if "/status" in c] == ["ok"], answers
    with np.load(tmp_path / "shot_detection.npz", allow_pickle=False) as npz:  # curl -OJ
        assert int(npz["n_cuts"]) == 3  # the 8 s clip cuts every 2 s
    # The run's callback_url received signed webhooks, the last one saying it finished.
    me = httpx.get(f"{api}/api/me", headers={"Authorization": f"Bearer {token}"},
                   timeout=30).json()
    deadline = time.monotonic() + 60
    while not any(json.loads(b).get("status") == "ok" for _, b in received):
        assert time.monotonic() < deadline, received
        time.sleep(1)
    for headers, body in received:
        assert verify(me["webhook_secret"], body, headers[SIGNATURE_HEADER]), headers
        assert json.loads(body)["run_id"] == ids["run_id"]
