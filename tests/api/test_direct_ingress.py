"""Direct ingress with two API replicas on the real local stack (``trendflow up``): replica i on
``api.port + i``, Serve's proxy beside them, nothing beyond loopback, load shed per replica with
the JSON ``503 overloaded``, and ``down`` ends every process it started."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import psutil
import pytest

from tests.api.listeners import LOOPBACK, owner_of, stack_listeners, stack_pids
from trendflow import stack
from trendflow.processes import pid_alive
from trendflow.settings import Settings


def _two_free_ports() -> int:
    """A port P with P and P + 1 both free on loopback."""
    for _ in range(50):
        port = stack._free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two adjacent free loopback ports")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("stack-direct")
    port = _two_free_ports()
    env = {
        "TRENDFLOW_DATA_DIR": str(data),
        "TRENDFLOW_ENV": "test",
        "TRENDFLOW_API__PORT": str(port),
        "TRENDFLOW_API__DASHBOARD_PORT": str(stack._free_port()),
        "TRENDFLOW_API__SERVE_DIRECT_INGRESS": "true",
        "TRENDFLOW_API__REPLICAS": "2",
        "TRENDFLOW_API__REPLICA_CPUS": "0",
        # One request at a time per replica and no waiting room: the next is shed at once.
        "TRENDFLOW_API__MAX_ONGOING_REQUESTS": "1",
        "TRENDFLOW_API__MAX_QUEUED_REQUESTS": "0",
        "TRENDFLOW_API__OVERLOAD_ANSWER_SLOTS": "8",
    }
    settings = Settings(data_dir=data)
    state = stack.up(settings, env=env, triton="off", timeout_s=300)
    pids = stack_pids(state)
    names = {p.pid: p.info["name"] for p in psutil.process_iter(["name"]) if p.pid in pids}
    try:
        yield {"state": state, "settings": settings, "env": env, "port": port, "pids": pids}
    finally:
        lines = stack.down(settings)
        assert not pid_alive(state.supervisor_pid), lines
        # Worker processes may take a few seconds to exit after their raylet is gone.
        deadline = time.monotonic() + 30
        while (left := {p: n for p, n in names.items() if pid_alive(p)}) and \
                time.monotonic() < deadline:
            time.sleep(0.5)
        assert not left, f"processes of the stack still running after down: {left}; {lines}"


def test_each_replica_listens_on_its_own_loopback_port(live: dict[str, Any]) -> None:
    state, port = live["state"], live["port"]
    assert state.replica_urls == [f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"]
    assert state.api_url == state.replica_urls[0]
    owners = [owner_of(state, p) for p in (port, port + 1)]
    assert all(o.process.startswith("ray::ServeRepl") for o in owners)
    assert owners[0].pid != owners[1].pid  # two replicas, not one server twice
    exposed = [lst for lst in stack_listeners(state) if lst.ip not in LOOPBACK]
    assert not exposed, f"listening beyond loopback: {exposed}"
    for url in [*state.replica_urls, state.proxy_url]:
        assert httpx.get(url + "/health/live", timeout=10).status_code == 200


def test_status_checks_every_replica_and_the_proxy(live: dict[str, Any]) -> None:
    out = subprocess.run([sys.executable, "-m", "trendflow.cli", "status"],
                         env={**_clean_env(), **live["env"]}, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    state = live["state"]
    assert any(ln.split()[:3] == ["api", "up", state.api_url] for ln in lines), out.stdout
    assert f"{'api replica 1':<11} {'up':<8} {state.replica_urls[1]}" in lines, out.stdout
    assert f"{'serve proxy':<11} {'up':<8} {state.proxy_url}" in lines, out.stdout


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TRENDFLOW_")}


async def _slow_body(seconds: float) -> AsyncIterator[bytes]:
    for _ in range(int(seconds / 0.1)):
        await asyncio.sleep(0.1)
        yield b"\0" * 1024


async def test_a_full_replica_sheds_with_json_while_the_other_answers(
    live: dict[str, Any]
) -> None:
    state = live["state"]
    headers = {"Authorization": f"Bearer {state.admin_token}"}
    first, second = state.replica_urls
    async with httpx.AsyncClient(timeout=30, headers=headers) as http:
        assert (await http.get(first + "/api/me")).status_code == 200
        # One upload streams its body for 3 s and holds replica 0's only slot meanwhile.
        slow = asyncio.create_task(http.post(first + "/api/uploads", content=_slow_body(3.0),
                                             headers={"X-Filename": "a.mp4"}))
        await asyncio.sleep(1.0)
        burst = await asyncio.gather(*(http.get(first + "/api/me") for _ in range(4)))
        assert {r.status_code for r in burst} == {503}
        assert burst[0].json()["code"] == "overloaded"
        assert burst[0].headers["retry-after"] == "1"
        assert (await http.get(second + "/api/me")).status_code == 200  # its own slot is free
        assert (await http.get(first + "/health/live")).status_code == 200  # never shed
        done = await slow
        assert done.status_code == 415  # zero bytes are not a video: it was processed
        assert (await http.get(first + "/api/me")).status_code == 200
