"""End-to-end benchmark: a creator's run (upload → ``ok``) through the real local stack, against
a bare PyAV decode of the same file at the analysis timeline, measured in the same run.

For each profile (``--profile``, default ``fast`` and ``full``) it starts a fresh local stack
(``trendflow up --profile P``: embedded PostgreSQL, local store, Ray, scheduler, Serve API, and
Triton when the profile has model-backed components), then for each clip:

1. a bare decode of the file through the filter graph ``fps=F,scale=-2:H:flags=lanczos,
   format=rgb24`` (F, H: the profile's sampling), the floor a run cannot beat on this machine;
2. runs through the HTTP API exactly as ``trendflow analyze`` makes them (upload, create with
   ``cache_ttl_days = 0`` so nothing is reused, poll the status every ``--poll`` s until final);
   the first two runs on a new stack are reported apart (``first/second after up``: each of the
   two CPU workers' processes imports, sets up and loads its JIT caches once; model sessions
   start cold), the others are ``warm``;
3. the critical path of each run from its manifest and its row: upload, run creation, queue
   (admission window + claim), download/probe/plan, each dependency layer's analysis (decode
   streams into the layer's maps) with the component that finishes last and by how much, the
   final persistence (manifest and component rows) and the settlement (final status and billing
   in one transaction, until the client sees ``ok``). A component's own time (map + reduce on its
   workers, the manifest's ``duration_ms``) is printed next to its window.

Figures: ``run wall / bare decode``, also without the queue wait (the admission window, 5 s by
default, is a setting: ``--window``). Clips come from ``trendflow.media.synth`` and are cached in
``--workdir``: a 60 s 1080p30 H.264 pan with scene changes, and a 19.9 min 640x360 still picture
changing every 10 s with a tone (``--quick``: 10 s and 2 min). The machine is shared: absolute
times are noisy, read the ratios.

    .venv/bin/python benchmarks/bench_e2e.py                 # both profiles, full clips
    .venv/bin/python benchmarks/bench_e2e.py --quick --profile fast
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from bench_segmenter import bare_decode, make_1080p

from trendflow import stack
from trendflow.media import synth
from trendflow.settings import Settings

TERMINAL = ("ok", "error", "cancelled")


@dataclass
class Stage:
    name: str
    seconds: float
    detail: str = ""


@dataclass
class RunFigures:
    profile: str
    clip: str
    kind: str  # "first after up" | "warm"
    wall_s: float
    queue_s: float
    bare_decode_s: float
    stages: list[Stage] = field(default_factory=list)
    bound: str = ""  # the component that finishes the last analysis layer

    @property
    def ratio(self) -> float:
        return self.wall_s / self.bare_decode_s

    @property
    def ratio_no_queue(self) -> float:
        return (self.wall_s - self.queue_s) / self.bare_decode_s


def _ts(value: str | None) -> float:
    if value is None:
        raise SystemExit("a finished run lacks a timestamp in its manifest")
    return datetime.fromisoformat(value).timestamp()


def make_clips(workdir: Path, quick: bool) -> dict[str, Path]:
    """The two clips, generated once per ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    hd_s, long_s = (10.0, 120.0) if quick else (60.0, 19.9 * 60)
    t = time.perf_counter()
    hd = make_1080p(workdir / f"1080p30_{hd_s:g}s.mp4", seconds=hd_s)
    long_path = workdir / f"640x360_{long_s:g}s.mp4"
    if not long_path.exists():
        synth.long_still(long_path, duration_s=long_s, fps=6.0, size=(640, 360), audio="tone")
    print(f"clips ready in {time.perf_counter() - t:.1f} s (cached in {workdir})", flush=True)
    return {f"{hd_s:g} s 1080p30": hd, f"{long_s / 60:g} min 640x360": long_path}


def critical_path(run: dict[str, Any], manifest: dict[str, Any], t_upload: float,
                  t_create: float, t_created: float,
                  t_seen_ok: float) -> tuple[list[Stage], float, str]:
    """Stages of one finished run (seconds each), its queue wait and the bounding component."""
    m_run = manifest["run"]
    created, started = _ts(m_run["created_at"]), _ts(m_run["started_at"])
    comps = {n: c for n, c in manifest["components"].items() if c.get("started_at")}
    # A dependency layer starts once the one before has finished; the components of one layer
    # start within milliseconds of each other.
    layers: dict[float, list[str]] = {}
    layer_end = float("-inf")
    for name in sorted(comps, key=lambda n: _ts(comps[n]["started_at"])):
        start = _ts(comps[name]["started_at"])
        if start >= layer_end:
            layers[start] = []
        layers[max(layers)].append(name)
        layer_end = max(layer_end, _ts(comps[name]["finished_at"]))
    stages = [Stage("upload (POST /api/uploads, probe included)", t_create - t_upload),
              Stage("create run (POST /api/runs: estimate + reservation)", t_created - t_create),
              Stage("queue (admission window + claim)", started - max(created, t_created))]
    first = min(layers) if layers else started
    stages.append(Stage("download / probe / plan", first - started))
    bound, longest = "", -1.0
    end = first
    for i, (start, names) in enumerate(sorted(layers.items())):
        ends = sorted(((_ts(comps[n]["finished_at"]), n) for n in names), reverse=True)
        finish, last = ends[0]
        margin = finish - ends[1][0] if len(ends) > 1 else 0.0
        if max(finish, end) - end > longest:  # the run's bound: the longest layer's last
            bound, longest = last, max(finish, end) - end
        own = ", ".join(f"{n} {_ts(comps[n]['finished_at']) - start:.1f}/"
                        f"{(comps[n].get('duration_ms') or 0) / 1000:.1f}"
                        for _, n in ends)
        stages.append(Stage(f"analysis layer {i + 1}: bound by {last} (+{margin:.1f} s over "
                            "the next)", max(finish, end) - end,
                            f"window/own s: {own}"))
        end = max(end, finish)
    db_finished = _ts(run["finished_at"])
    stages.append(Stage("persistence (manifest + component rows)", db_finished - end))
    stages.append(Stage("settlement + final status seen by the client", t_seen_ok - db_finished))
    return stages, started - max(created, t_created), bound


class Bench:
    def __init__(self, args: argparse.Namespace, clips: dict[str, Path]) -> None:
        self.args, self.clips = args, clips
        self.results: list[RunFigures] = []

    def profile(self, profile: str) -> None:
        data = Path(tempfile.mkdtemp(prefix=f"tf-bench-e2e-{profile}-"))
        env = {"TRENDFLOW_DATA_DIR": str(data),
               "TRENDFLOW_API__PORT": str(stack._free_port()),
               "TRENDFLOW_API__DASHBOARD_PORT": str(stack._free_port())}
        if self.args.window is not None:
            env["TRENDFLOW_RUNTIME__ADMISSION_WINDOW_S"] = str(self.args.window)
        if self.args.triton_repository is not None:
            env["TRENDFLOW_TRITON__REPOSITORY"] = str(self.args.triton_repository.resolve())
        settings = Settings(data_dir=data)
        print(f"\n== profile {profile}: load average {os.getloadavg()[0]:.2f}", flush=True)
        t = time.perf_counter()
        state = stack.up(settings, profile=profile, env=env, timeout_s=900)
        print(f"   stack up in {time.perf_counter() - t:.1f} s "
              f"(triton: {'started' if state.triton.get('started') else 'skipped'})", flush=True)
        try:
            assert state.api_url and state.admin_token
            with httpx.Client(base_url=state.api_url, timeout=600, headers={
                    "Authorization": f"Bearer {state.admin_token}"}) as http:
                builtin = _ok(http.get(f"/api/profiles/{profile}"))
                sampling = builtin["sampling"]
                run_profile = self._profile_for_runs(http, builtin)
                first, first_label = True, next(iter(self.clips))
                for label, path in self.clips.items():
                    if (self.args.long_clip_profiles is not None and label != first_label
                            and profile not in self.args.long_clip_profiles):
                        print(f"   {label}: skipped for {profile} (--long-clip-profiles)")
                        continue
                    bare = self._bare(path, float(sampling["fps"]), int(sampling["height"]))
                    # Two CPU workers: the second run after `up` is still the first on one of
                    # them (its process imports and loads JIT caches), so it is not warm either.
                    kinds = (["first after up", "second after up"] if first else [])
                    for kind in kinds + ["warm"] * self.args.runs:
                        self._run(http, profile, run_profile, label, path, kind, bare)
                    first = False
        finally:
            for line in stack.down(settings):
                print(f"   [down] {line}", flush=True)
            shutil.rmtree(data, ignore_errors=True)

    def _bare(self, path: Path, fps: float, height: int) -> float:
        times = []
        for _ in range(self.args.bare_repeats):
            t = time.perf_counter()
            frames = bare_decode(path, fps, height)
            times.append(time.perf_counter() - t)
        print(f"   bare decode {path.name} at {fps:g} fps / {height} px: {frames} frames, "
              f"best of {len(times)} {min(times):.2f} s", flush=True)
        return min(times)

    def _profile_for_runs(self, http: httpx.Client, builtin: dict[str, Any]) -> str:
        """The built-in profile, or (without --with-render) a copy of it that renders with the
        template engine: the figures are the analysis' own; bench_render measures the LLM."""
        if self.args.with_render or builtin["render"]["engine"] != "llm":
            return str(builtin["profile_id"])
        copy = f"bench-{builtin['profile_id']}"
        _ok(http.put(f"/api/profiles/{copy}", json={
            "profile_id": copy, "name": f"{builtin['name']} (template render)",
            "components": builtin["components"], "sampling": builtin["sampling"],
            "render": {"engine": "template"}, "cache_ttl_days": 0}))
        return copy

    def _run(self, http: httpx.Client, profile: str, run_profile: str, label: str, path: Path,
             kind: str, bare: float) -> None:
        t_upload = time.time()
        up = _ok(http.post("/api/uploads", content=path.read_bytes(),
                           headers={"X-Filename": path.name}))
        t_create = time.time()
        run = _ok(http.post("/api/runs", json={"upload_id": up["upload_id"],
                                                "profile_id": run_profile,
                                                "cache_ttl_days": 0}))
        t_created = time.time()
        status_path = f"/api/runs/{run['run_id']}/status"
        deadline = time.monotonic() + self.args.timeout
        while (st := _ok(http.get(status_path)))["status"] not in TERMINAL:
            if time.monotonic() > deadline:
                raise SystemExit(f"run {run['run_id']} did not finish in {self.args.timeout} s")
            time.sleep(self.args.poll)
        t_ok = time.time()
        if st["status"] != "ok":
            raise SystemExit(f"run {run['run_id']} ended {st['status']}: {st.get('error')}")
        result = _ok(http.get(f"/api/runs/{run['run_id']}"))
        stages, queue, bound = critical_path(result["run"], result["manifest"], t_upload,
                                             t_create, t_created, t_ok)
        fig = RunFigures(profile, label, kind, t_ok - t_upload, queue, bare, stages, bound)
        self.results.append(fig)
        print(f"   {profile} {label} [{kind}]: wall {fig.wall_s:.2f} s = "
              f"{fig.ratio:.2f}x bare decode ({fig.ratio_no_queue:.2f}x without the "
              f"{queue:.1f} s queue wait)", flush=True)
        for s in stages:
            print(f"      {s.seconds:7.2f} s  {s.name}" + (f"  [{s.detail}]" if s.detail else ""),
                  flush=True)

    def summary(self) -> None:
        print("\n| profile | clip | run | bare decode | wall | wall / bare | without queue wait "
              "| bound by (longest layer) |")
        print("|---|---|---|---|---|---|---|---|")
        groups: dict[tuple[str, str, str], list[RunFigures]] = {}
        for r in self.results:
            groups.setdefault((r.profile, r.clip, r.kind), []).append(r)
        for (profile, clip, kind), rs in groups.items():
            wall = statistics.median(r.wall_s for r in rs)
            print(f"| {profile} | {clip} | {kind} (n={len(rs)}) | {rs[0].bare_decode_s:.2f} s "
                  f"| {wall:.2f} s | **{statistics.median(r.ratio for r in rs):.2f}x** | "
                  f"{statistics.median(r.ratio_no_queue for r in rs):.2f}x | {rs[-1].bound} |")
        print(json.dumps({"runs": [{**asdict(r), "ratio": round(r.ratio, 3),
                                    "ratio_no_queue": round(r.ratio_no_queue, 3)}
                                   for r in self.results]}))


def _ok(r: httpx.Response) -> Any:
    if r.status_code >= 400:
        raise SystemExit(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}")
    return r.json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", action="append", default=None,
                        help="repeatable (default: fast and full)")
    parser.add_argument("--quick", action="store_true", help="10 s and 2 min clips")
    parser.add_argument("--runs", type=int, default=1, help="warm runs per clip")
    parser.add_argument("--bare-repeats", type=int, default=2)
    parser.add_argument("--long-clip-profiles", nargs="*", default=None,
                        help="profiles that also run the long clip (default: every profile)")
    parser.add_argument("--window", type=float, default=None,
                        help="admission window, s (default: the stack's setting)")
    parser.add_argument("--poll", type=float, default=0.1, help="status poll interval, s")
    parser.add_argument("--with-render", action="store_true",
                        help="keep a profile's LLM render in the run (default: the template "
                             "engine, so the figures are the analysis' own)")
    parser.add_argument("--triton-repository", type=Path, default=None,
                        help="model repository for the full profile (default: the setting, "
                             "triton_repo/)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="per run, s")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "tf-bench-e2e-clips")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)
    bench = Bench(args, make_clips(args.workdir, args.quick))
    for profile in args.profile or ["fast", "full"]:
        bench.profile(profile)
    bench.summary()


if __name__ == "__main__":
    main()
