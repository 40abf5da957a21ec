"""GET /api/runs/{id}/status under concurrent pollers: Serve over loopback vs in-process.

Starts a local stack (``trendflow up``, own data dir and ports), creates a user and one run,
then polls its status with ``--pollers`` concurrent httpx clients for ``--requests`` requests
through the Serve HTTP proxy, and the same through the FastAPI app in this process
(``httpx.ASGITransport``, same database) as the baseline. Prints req/s and p50/p99 latency.

    .venv/bin/python benchmarks/bench_api.py --pollers 100 --requests 3000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from trendflow import stack
from trendflow.api.app import create_app, open_context
from trendflow.api.client import demo_clip
from trendflow.settings import Settings


async def _poll(client: httpx.AsyncClient, path: str, headers: dict[str, str], total: int,
                pollers: int, interval_s: float = 0.0) -> tuple[float, list[float], int]:
    """``pollers`` clients share ``total`` requests; each waits ``interval_s`` between its own
    requests (0: back to back, the saturation test; 2 s: the documented polling cadence)."""
    latencies: list[float] = []
    errors = 0
    remaining = total

    async def worker(i: int) -> None:
        nonlocal remaining, errors
        if interval_s:
            await asyncio.sleep(interval_s * i / pollers)  # spread the pollers' phases
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            r = await client.get(path, headers=headers)
            latencies.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                errors += 1
            if interval_s:
                await asyncio.sleep(max(0.0, interval_s - (time.perf_counter() - t0)))

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(pollers)))
    return time.perf_counter() - started, latencies, errors


def _line(name: str, wall: float, lat: list[float], errors: int) -> tuple[float, float]:
    lat = sorted(lat)
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
    print(f"{name:<22} {len(lat) / wall:8.0f} req/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   "
          f"errors {errors}")
    return len(lat) / wall, p99


async def _bench(settings: Settings, state: stack.StackState, pollers: int, total: int,
                 interval_s: float) -> None:
    assert state.api_url and state.admin_token
    headers = {"Authorization": f"Bearer {state.admin_token}"}
    async with httpx.AsyncClient(base_url=state.api_url, headers=headers, timeout=60) as http:
        clip = demo_clip(Path(state.data_dir) / "bench.mp4")
        up = (await http.post("/api/uploads", content=clip.read_bytes(),
                              headers={"X-Filename": "bench.mp4"})).json()
        run = (await http.post("/api/runs", json={"upload_id": up["upload_id"],
                                                   "profile_id": "fast"})).json()
        path = f"/api/runs/{run['run_id']}/status"
        # Measure the API, not the API beside a running analysis on the same cores.
        while (await http.get(path)).json()["status"] not in ("ok", "error", "cancelled"):
            await asyncio.sleep(1.0)
    limits = httpx.Limits(max_connections=pollers, max_keepalive_connections=pollers)
    print(f"{pollers} concurrent pollers, {total} requests each way, {path}")
    async with httpx.AsyncClient(base_url=state.api_url, limits=limits, timeout=60) as http:
        await _poll(http, path, headers, pollers, pollers)  # warm-up: connections, JIT, pools
        serve_rps, serve_p99 = _line("Serve (loopback HTTP)",
                                     *await _poll(http, path, headers, total, pollers))
        paced = min(total, pollers * 5)
        _, paced_p99 = _line(f"Serve, every {interval_s:g} s",
                             *await _poll(http, path, headers, paced, pollers, interval_s))

    # The same database and store as the stack (the embedded server is joined, not restarted).
    local = stack.local_settings(settings)
    ctx = await open_context(local)
    app = create_app(lambda: open_context(local), webhooks=False)
    app.state.ctx = ctx
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://in-process") as http:
            await _poll(http, path, headers, pollers, pollers)
            base_rps, base_p99 = _line("in-process (ASGI)",
                                       *await _poll(http, path, headers, total, pollers))
    finally:
        await ctx.db.close()
        await ctx.store.close()
    print(f"Serve / in-process: throughput x{serve_rps / base_rps:.2f}, "
          f"p99 x{serve_p99 / base_p99:.2f}; target p99 <= 50 ms back to back: "
          f"{'met' if serve_p99 <= 50 else 'NOT met'}; polling every {interval_s:g} s: "
          f"{'met' if paced_p99 <= 50 else 'NOT met'}")
    print(json.dumps({"serve_rps": round(serve_rps), "serve_p99_ms": round(serve_p99, 1),
                      "serve_paced_p99_ms": round(paced_p99, 1),
                      "in_process_rps": round(base_rps), "in_process_p99_ms": round(base_p99, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pollers", type=int, default=100)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--interval", type=float, default=2.0,
                        help="seconds between one poller's requests in the paced test")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="tf-bench-api-"))
    env = {"TRENDFLOW_DATA_DIR": str(data),
           "TRENDFLOW_API__PORT": str(stack._free_port()),
           "TRENDFLOW_API__DASHBOARD_PORT": str(stack._free_port())}
    settings = Settings(data_dir=data)
    state = stack.up(settings, env=env)
    try:
        asyncio.run(_bench(settings, state, args.pollers, args.requests, args.interval))
    finally:
        for line in stack.down(settings):
            print(f"[down] {line}")


if __name__ == "__main__":
    main()
