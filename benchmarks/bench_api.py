"""GET /api/runs/{id}/status under concurrent pollers: Serve over loopback vs a plain ASGI server.

For each configuration (``--config``, repeated ``--repeat`` times, interleaved so every
configuration sees the same machine load) it starts a local stack (``trendflow up``: own data
dir and ports), creates one run, waits for it to finish, then polls its status over loopback with
``--pollers`` concurrent clients:

- back to back, ``--requests`` requests (saturation: req/s);
- paced, each client once every ``--interval`` s, ``--paced-requests`` requests (the documented
  polling cadence: the p99 target is measured here);
- the baseline, back to back: the same app (same database) under one plain uvicorn process
  without Ray, with the same client, so the ratio is what Serve's path costs;
- with ``--under-load``, paced again **while a run analyses**: runs of the ``fast`` profile on a
  60 s 1080p30 clip follow one another on the same stack, and only requests sent while one of
  them is ``running`` count (target p99 <= 20 ms). Each run's wall time (created → ``ok``) is
  printed too: compare configurations that differ in the workers' CPU priority (below, and
  docs/performance.md).

The load generator shares the cores with the server; ``--client aiohttp`` (default) costs far
less CPU per request than httpx, so more of the machine measures the server.

    .venv/bin/python benchmarks/bench_api.py --pollers 100 --requests 3000 --interval 2 \\
        --config proxy --config direct --repeat 2
    .venv/bin/python benchmarks/bench_api.py --under-load --no-baseline --repeat 2 \\
        --config equal:TRENDFLOW_RUNTIME__WORKER_NICENESS=0 \\
        --config niced:TRENDFLOW_RUNTIME__WORKER_NICENESS=10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from trendflow import stack
from trendflow.api.client import demo_clip
from trendflow.settings import Settings

# Named configurations: the environment given to `trendflow up`, every Serve setting explicit.
_SEPARATE = {"TRENDFLOW_API__SERVE_USER_CODE_IN_MAIN_LOOP": "false",
             "TRENDFLOW_API__SERVE_LOG_TO_STDERR": "true",
             "TRENDFLOW_API__SERVE_LOG_BUFFER_LINES": "1"}  # Ray Serve's own defaults
_INLINE = {"TRENDFLOW_API__SERVE_USER_CODE_IN_MAIN_LOOP": "true",
           "TRENDFLOW_API__SERVE_LOG_TO_STDERR": "false",
           "TRENDFLOW_API__SERVE_LOG_BUFFER_LINES": "1000"}
_PROXY = {"TRENDFLOW_API__SERVE_DIRECT_INGRESS": "false"}
_DIRECT = {"TRENDFLOW_API__SERVE_DIRECT_INGRESS": "true"}
PRESETS: dict[str, dict[str, str]] = {
    "proxy": {**_PROXY, **_SEPARATE},  # Serve as it was: proxy actor, user-code thread
    "direct": {**_DIRECT, **_SEPARATE},
    "proxy+inline": {**_PROXY, **_INLINE},
    "direct+inline": {**_DIRECT, **_INLINE},  # the defaults
    "direct+inline-only": {**_DIRECT, **_SEPARATE,
                           "TRENDFLOW_API__SERVE_USER_CODE_IN_MAIN_LOOP": "true"},
}

Get = Callable[[str], Awaitable[int]]


@dataclass
class Result:
    name: str
    wall_s: float
    latencies_ms: list[float]
    errors: int
    load_runs_wall_s: list[float] = field(default_factory=list)  # --under-load only

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.wall_s

    def pct(self, q: float) -> float:
        lat = sorted(self.latencies_ms)
        return lat[min(len(lat) - 1, int(q * len(lat)))]

    def line(self) -> str:
        return (f"{self.name:<34} {self.rps:7.0f} req/s   p50 "
                f"{statistics.median(self.latencies_ms):7.1f} ms   p99 {self.pct(0.99):7.1f} ms"
                f"   n {len(self.latencies_ms):5d}   errors {self.errors}")


async def _poll(get: Get, path: str, total: int, pollers: int, interval_s: float = 0.0,
                sent: list[float] | None = None) -> tuple[float, list[float], int]:
    """``pollers`` clients share ``total`` requests; each waits ``interval_s`` between its own
    requests (0: back to back). ``sent`` receives each request's send time (``time.time()``),
    in the order of the latencies."""
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
            wall = time.time()
            status = await get(path)
            latencies.append((time.perf_counter() - t0) * 1000)
            if sent is not None:
                sent.append(wall)
            if status != 200:
                errors += 1
            if interval_s:
                await asyncio.sleep(max(0.0, interval_s - (time.perf_counter() - t0)))

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(pollers)))
    return time.perf_counter() - started, latencies, errors


class _Client:
    """One pool of ``pollers`` keep-alive connections to ``base``; ``get`` returns the status."""

    def __init__(self, kind: str, base: str, token: str, pollers: int) -> None:
        self.kind, self.base, self.pollers = kind, base, pollers
        self.headers = {"Authorization": f"Bearer {token}"}
        self._aio: aiohttp.ClientSession | None = None
        self._httpx: httpx.AsyncClient | None = None

    async def __aenter__(self) -> _Client:
        if self.kind == "aiohttp":
            self._aio = aiohttp.ClientSession(
                base_url=self.base, headers=self.headers,
                connector=aiohttp.TCPConnector(limit=self.pollers),
                timeout=aiohttp.ClientTimeout(total=60))
        else:
            self._httpx = httpx.AsyncClient(
                base_url=self.base, headers=self.headers, timeout=60,
                limits=httpx.Limits(max_connections=self.pollers,
                                    max_keepalive_connections=self.pollers))
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._aio is not None:
            await self._aio.close()
        if self._httpx is not None:
            await self._httpx.aclose()

    async def get(self, path: str) -> int:
        if self._aio is not None:
            async with self._aio.get(path) as r:
                await r.read()
                return r.status
        assert self._httpx is not None
        return (await self._httpx.get(path)).status_code


async def _measure(label: str, base: str, token: str, path: str, args: argparse.Namespace,
                   paced: bool) -> list[Result]:
    out = []
    async with _Client(args.client, base, token, args.pollers) as client:
        await _poll(client.get, path, args.pollers * 2, args.pollers)  # warm-up: connections
        out.append(Result(f"{label}, back to back",
                          *await _poll(client.get, path, args.requests, args.pollers)))
        if paced:
            out.append(Result(f"{label}, every {args.interval:g} s",
                              *await _poll(client.get, path, args.paced_requests,
                                           args.pollers, args.interval)))
    for r in out:
        print(r.line(), flush=True)
    return out


async def _prepare_run(state: stack.StackState) -> str:
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
    return path


@dataclass
class _LoadRuns:
    """Runs analysing back to back while the pollers poll; when each was ``running``."""

    running: list[tuple[float, float]] = field(default_factory=list)  # time.time() spans
    wall_s: list[float] = field(default_factory=list)  # created -> ok, as the client saw it

    def covers(self, t: float) -> bool:
        return any(a <= t <= b for a, b in self.running)


async def _analyse_until(state: stack.StackState, clip: Path, stop: asyncio.Event,
                         started: asyncio.Event, out: _LoadRuns) -> None:
    """Analyse ``clip`` with the ``fast`` profile again and again until ``stop`` is set."""
    assert state.api_url and state.admin_token
    headers = {"Authorization": f"Bearer {state.admin_token}"}
    async with httpx.AsyncClient(base_url=state.api_url, headers=headers, timeout=120) as http:
        up = (await http.post("/api/uploads", content=clip.read_bytes(),
                              headers={"X-Filename": clip.name})).json()
        while not stop.is_set():
            t_create = time.time()
            r = await http.post("/api/runs", json={"upload_id": up["upload_id"],
                                                   "profile_id": "fast", "cache_ttl_days": 0})
            path = f"/api/runs/{r.json()['run_id']}/status"
            since = None
            while True:
                st = (await http.get(path)).json()
                if st["status"] == "running" and since is None:
                    since = time.time()
                    started.set()
                if st["status"] in ("ok", "error", "cancelled"):
                    break
                await asyncio.sleep(0.2)
            if st["status"] != "ok":
                raise RuntimeError(f"a load run ended {st['status']}: {st.get('error')}")
            out.wall_s.append(time.time() - t_create)
            if since is not None:
                out.running.append((since, time.time()))


async def _measure_under_load(label: str, state: stack.StackState, path: str,
                              args: argparse.Namespace) -> tuple[Result, _LoadRuns]:
    """The paced phase while runs analyse; only requests sent during a ``running`` run count."""
    assert state.api_url and state.admin_token
    stop, started, runs = asyncio.Event(), asyncio.Event(), _LoadRuns()
    load = asyncio.create_task(_analyse_until(state, args.load_clip, stop, started, runs))
    sent: list[float] = []
    try:
        await asyncio.wait_for(started.wait(), timeout=600)
        async with _Client(args.client, state.api_url, state.admin_token, args.pollers) as c:
            await _poll(c.get, path, args.pollers * 2, args.pollers)  # warm-up: connections
            wall, latencies, errors = await _poll(c.get, path, args.paced_requests,
                                                  args.pollers, args.interval, sent)
        stop.set()
        await load  # the run in flight finishes, so its span is known
    finally:
        stop.set()
        if not load.done():
            load.cancel()
    kept = [lat for lat, t in zip(latencies, sent, strict=True) if runs.covers(t)]
    result = Result(f"{label}, every {args.interval:g} s while a run analyses", wall, kept,
                    errors, runs.wall_s)
    print(f"{result.line()}   ({len(latencies) - len(kept)} sent between runs left out)",
          flush=True)
    print(f"   load runs (fast, {args.load_clip.name}): {len(runs.wall_s)}, wall created -> ok "
          f"{' / '.join(f'{w:.1f}' for w in runs.wall_s)} s, median "
          f"{statistics.median(runs.wall_s):.1f} s", flush=True)
    return result, runs


def _start_baseline(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = stack._free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--baseline-server", str(port)],
                            env={**os.environ, "TRENDFLOW_DATA_DIR": str(data)},
                            stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/health/live", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the baseline server on {url} did not start")
        time.sleep(0.3)


def _serve_baseline(port: int) -> None:
    """The app alone: one uvicorn process on loopback, no Ray, the stack's database and store."""
    import uvicorn

    from trendflow.api.app import create_app, open_context
    from trendflow.settings import get_settings

    local = stack.local_settings(get_settings())
    app = create_app(lambda: open_context(local), webhooks=False)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _bench_config(name: str, env_extra: dict[str, str], args: argparse.Namespace,
                  baseline: bool) -> list[Result]:
    data = Path(tempfile.mkdtemp(prefix="tf-bench-api-"))
    env = {"TRENDFLOW_DATA_DIR": str(data),
           "TRENDFLOW_API__PORT": str(stack._free_port()),
           "TRENDFLOW_API__DASHBOARD_PORT": str(stack._free_port()), **env_extra}
    settings = Settings(data_dir=data)
    print(f"-- {name}: load average {os.getloadavg()[0]:.2f}", flush=True)
    state = stack.up(settings, env=env)
    try:
        assert state.admin_token is not None and state.api_url is not None
        path = asyncio.run(_prepare_run(state))
        results = asyncio.run(_measure(f"Serve [{name}]", state.api_url, state.admin_token,
                                       path, args, paced=True))
        if args.under_load:
            results.append(asyncio.run(_measure_under_load(f"Serve [{name}]", state, path,
                                                           args))[0])
        if baseline:
            proc, url = _start_baseline(data)
            try:
                results += asyncio.run(_measure("plain uvicorn (no Ray)", url,
                                                state.admin_token, path, args, paced=False))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    finally:
        for line in stack.down(settings):
            print(f"   [down] {line}", flush=True)
        shutil.rmtree(data, ignore_errors=True)
    return results


def _parse_config(spec: str) -> tuple[str, dict[str, str]]:
    """``NAME`` (a preset) or ``NAME:KEY=VALUE,KEY=VALUE``."""
    name, _, rest = spec.partition(":")
    if not rest:
        if name not in PRESETS:
            raise SystemExit(f"unknown config {name!r}; presets: {', '.join(PRESETS)}")
        return name, PRESETS[name]
    return name, dict(kv.split("=", 1) for kv in rest.split(","))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pollers", type=int, default=100)
    parser.add_argument("--requests", type=int, default=3000,
                        help="requests in each back-to-back phase")
    parser.add_argument("--paced-requests", type=int, default=3000,
                        help="requests in the paced phase (p99 of fewer than ~2000 is noise)")
    parser.add_argument("--interval", type=float, default=2.0,
                        help="seconds between one poller's requests in the paced phase")
    parser.add_argument("--client", choices=("aiohttp", "httpx"), default="aiohttp")
    parser.add_argument("--config", action="append", default=None,
                        help=f"a preset ({', '.join(PRESETS)}) or NAME:KEY=VAL,KEY=VAL; "
                             "repeatable (default: proxy and direct)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--under-load", action="store_true",
                        help="also the paced phase while runs of a 60 s 1080p30 clip analyse")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "tf-bench-e2e-clips",
                        help="where the --under-load clip is generated once")
    parser.add_argument("--baseline-server", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server is not None:
        _serve_baseline(args.baseline_server)
        return
    configs = [_parse_config(c) for c in (args.config or ["proxy", "direct"])]
    if args.under_load:
        from bench_segmenter import make_1080p

        args.workdir.mkdir(parents=True, exist_ok=True)
        args.load_clip = make_1080p(args.workdir / "1080p30_60s.mp4")
    print(f"{args.pollers} pollers over loopback, client {args.client}; back to back "
          f"{args.requests}, paced every {args.interval:g} s {args.paced_requests}; "
          f"{os.cpu_count()} cores", flush=True)
    summary: dict[str, list[dict[str, Any]]] = {}
    baselines: list[Result] = []
    for rep in range(args.repeat):
        for i, (name, env) in enumerate(configs):
            # The baseline once per round, beside the first configuration.
            results = _bench_config(name, env, args, baseline=i == 0 and not args.no_baseline)
            baselines += [r for r in results if r.name.startswith("plain")]
            summary.setdefault(name, []).append({r.name: _figures(r) for r in results})
            paced = results[1]
            base = baselines[-1] if baselines else None
            ratio = ("" if base is None else
                     f"; back to back vs plain uvicorn: throughput x{results[0].rps / base.rps:.2f}"
                     f", p99 x{results[0].pct(0.99) / base.pct(0.99):.2f}")
            print(f"   round {rep + 1} [{name}]: paced p99 {paced.pct(0.99):.1f} ms -> target "
                  f"p99 <= 50 ms {'met' if paced.pct(0.99) <= 50 else 'NOT met'}{ratio}",
                  flush=True)
            for r in results:
                if r.load_runs_wall_s:
                    print(f"   round {rep + 1} [{name}]: while a run analyses p99 "
                          f"{r.pct(0.99):.1f} ms -> target p99 <= 20 ms "
                          f"{'met' if r.pct(0.99) <= 20 else 'NOT met'}; load runs' median "
                          f"wall {statistics.median(r.load_runs_wall_s):.1f} s", flush=True)
    _print_summary(summary, baselines, args)


def _figures(r: Result) -> dict[str, float]:
    out = {"rps": round(r.rps), "p50_ms": round(statistics.median(r.latencies_ms), 1),
           "p99_ms": round(r.pct(0.99), 1), "n": len(r.latencies_ms), "errors": r.errors}
    if r.load_runs_wall_s:
        out["load_runs"] = len(r.load_runs_wall_s)
        out["load_run_wall_median_s"] = round(statistics.median(r.load_runs_wall_s), 2)
    return out


def _print_summary(summary: dict[str, list[dict[str, Any]]], baselines: list[Result],
                   args: argparse.Namespace) -> None:
    """Per configuration, each round's figures side by side, and the ratio to the baseline."""
    base_rps = statistics.mean(b.rps for b in baselines) if baselines else None
    print(f"\nsummary (rounds separated by '/'; client {args.client}; baseline: plain uvicorn "
          f"back to back, mean {base_rps or 0:.0f} req/s)")
    for name, rounds in summary.items():
        b2b = [next(v for k, v in r.items() if k.endswith("back to back") and "plain" not in k)
               for r in rounds]
        paced = [next(v for k, v in r.items() if "every" in k) for r in rounds]
        loaded = [v for r in rounds for k, v in r.items() if "analyses" in k]
        ratio = "" if base_rps is None else \
            f"  throughput vs baseline x{statistics.mean(x['rps'] for x in b2b) / base_rps:.2f}"
        print(f"  {name:<20} back to back {'/'.join(str(x['rps']) for x in b2b)} req/s;"
              f"  paced p50 {'/'.join(str(x['p50_ms']) for x in paced)} ms,"
              f" p99 {'/'.join(str(x['p99_ms']) for x in paced)} ms{ratio}")
        if loaded:
            print(f"  {'':<20} while a run analyses: p50 "
                  f"{'/'.join(str(x['p50_ms']) for x in loaded)} ms, p99 "
                  f"{'/'.join(str(x['p99_ms']) for x in loaded)} ms; load runs' median wall "
                  f"{'/'.join(str(x['load_run_wall_median_s']) for x in loaded)} s")
    print(json.dumps({"configs": summary, "baseline": [_figures(b) for b in baselines]}))


if __name__ == "__main__":
    main()
