"""Estimate error: estimated vs measured time per component, before and after calibration.

Generates short clips (``trendflow.media.synth.scene_cuts``, varied durations), analyses them with
the local runner (``trendflow.pipeline.runner.run_local``) using every component of the registry,
then, per component:

- **baseline**: the per-unit seconds in ``trendflow/db/seed/seed.json`` (what a fresh install
  prices with);
- **calibrated**: the calibration rule of ``python -m trendflow.jobs.calibrate`` (median measured
  seconds per pricing unit, units counted by :func:`trendflow.billing.pricing.units_for`) fitted
  on the calibration clips;

and reports the median absolute percentage error (MdAPE) of each on *new* clips, with the
baseline/calibrated ratio. The first run only warms up (imports, JIT) and is not measured.

``--eta`` measures instead the ETA a user is shown (``POST /api/estimate``'s ``eta_s``) against
the real time of the run (created → ``ok`` as the client sees it, polling every 0.2 s) on the
real local stack (``trendflow up --profile P``, a fresh data dir per stack), separately for the
first run after ``up``, the second, and warm runs. It runs two stacks in the same invocation:
``warm_workers off`` (the baseline: workers start cold and set up on their first run, as before
warming) and ``warm_workers on`` (the default: the pools warm before ``up`` reports ready). Both
share one numba cache directory, primed before either starts, as on a machine that has run
``up`` once before; ``--cold-numba-cache`` leaves it empty instead. Reports real / ETA per run.

    .venv/bin/python benchmarks/bench_estimate.py [--calib 6,9,12] [--eval 7,10,14]
    .venv/bin/python benchmarks/bench_estimate.py --eta [--profile fast] [--warm-runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from trendflow import stack
from trendflow.billing.pricing import units_for
from trendflow.contracts.identity import RunIdentity, upload_video_id
from trendflow.contracts.profile import ProfileConfig, config_hash
from trendflow.db.seed.seed import load_seed
from trendflow.jobs.calibrate import fit_seconds_per_unit, mdape
from trendflow.media import synth
from trendflow.pipeline.components.registry import component_names
from trendflow.pipeline.runner import run_local
from trendflow.pipeline.segmenter import UploadSource
from trendflow.pipeline.types import VideoMeta
from trendflow.settings import Settings
from trendflow.storage.local import LocalStore

TERMINAL = ("ok", "error", "cancelled")


async def measure(profile: ProfileConfig, durations: list[float], root: Path,
                  tag: str) -> list[tuple[float, dict[str, float]]]:
    """``(duration_s, {component: seconds})`` per clip."""
    out = []
    for i, duration in enumerate(durations):
        cuts = tuple(float(c) for c in range(2, int(duration), 3))
        clip = synth.scene_cuts(root / f"{tag}{i}.mp4", cuts_s=cuts, duration_s=duration,
                                fps=24.0, size=(320, 180))
        identity = RunIdentity.create(platform_id="upload", video_id=upload_video_id(clip.path),
                                      config_hash=config_hash(profile))
        manifest = await run_local(identity, profile,
                                   UploadSource(clip.path, VideoMeta(title=f"clip {i}")),
                                   LocalStore(root / "store"), root / f"work-{tag}{i}")
        if manifest.run.status != "ok":
            raise SystemExit(f"run on {clip.path} ended {manifest.run.status}: "
                             f"{manifest.run.error}")
        times = {n: (r.duration_ms or 0) / 1000.0 for n, r in manifest.components.items()}
        out.append((clip.duration_s, times))
    return out


def _ok(r: httpx.Response) -> Any:
    if r.status_code >= 400:
        raise SystemExit(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}")
    return r.json()


def prime_numba_cache(directory: Path) -> float:
    """Compile librosa's numba functions into ``directory`` in a process of its own (what the
    first ``up`` on a machine leaves behind); seconds."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from trendflow.pipeline.components.audio_features "
                    "import prepare_numba_cache, warm_numba_cache; "
                    "warm_numba_cache(prepare_numba_cache())"],
                   env={**os.environ, "TRENDFLOW_COMPONENTS__NUMBA_CACHE_DIR": str(directory)},
                   check=True)
    return time.perf_counter() - t


def template_copy(http: httpx.Client, profile_id: str) -> str:
    """``profile_id``, or a copy of it rendering with the template engine if it uses the LLM."""
    builtin = _ok(http.get(f"/api/profiles/{profile_id}"))
    if builtin["render"]["engine"] != "llm":
        return profile_id
    copy = f"bench-{profile_id}"
    _ok(http.put(f"/api/profiles/{copy}", json={
        "profile_id": copy, "name": f"{builtin['name']} (template render)",
        "components": builtin["components"], "sampling": builtin["sampling"],
        "render": {"engine": "template"}, "cache_ttl_days": 0}))
    return copy


def eta_runs(args: argparse.Namespace, clip: Path, warm: bool,
             numba_dir: Path) -> tuple[float, list[tuple[str, float, float]]]:
    """A fresh stack with ``warm_workers`` = ``warm``: (``up`` seconds, [(kind, ETA s, real s)])."""
    data = Path(tempfile.mkdtemp(prefix="tf-bench-eta-"))
    env = {"TRENDFLOW_DATA_DIR": str(data),
           # The runs render with the template engine (a copy of the profile, below): the
           # figures are the analysis' own; no local LLM server is started.
           "TRENDFLOW_LLM__ENABLED": "false",
           "TRENDFLOW_API__PORT": str(stack._free_port()),
           "TRENDFLOW_API__DASHBOARD_PORT": str(stack._free_port()),
           "TRENDFLOW_COMPONENTS__NUMBA_CACHE_DIR": str(numba_dir),
           "TRENDFLOW_RUNTIME__WARM_WORKERS": "true" if warm else "false"}
    settings = Settings(data_dir=data)
    label = "on" if warm else "off"
    print(f"\n== warm_workers {label}: load average {os.getloadavg()[0]:.2f}", flush=True)
    t = time.perf_counter()
    state = stack.up(settings, profile=args.profile, env=env, timeout_s=900)
    up_s = time.perf_counter() - t
    print(f"   up in {up_s:.1f} s", flush=True)
    out = []
    try:
        assert state.api_url and state.admin_token
        with httpx.Client(base_url=state.api_url, timeout=600, headers={
                "Authorization": f"Bearer {state.admin_token}"}) as http:
            profile = template_copy(http, args.profile)
            kinds = ["first after up", "second after up"] + ["warm"] * args.warm_runs
            for kind in kinds:
                up = _ok(http.post("/api/uploads", content=clip.read_bytes(),
                                   headers={"X-Filename": clip.name}))
                body = {"upload_id": up["upload_id"], "profile_id": profile,
                        "cache_ttl_days": 0}
                eta = _ok(http.post("/api/estimate", json=body))["eta_s"]
                run = _ok(http.post("/api/runs", json=body))
                t_created = time.perf_counter()
                path = f"/api/runs/{run['run_id']}/status"
                while (st := _ok(http.get(path)))["status"] not in TERMINAL:
                    time.sleep(0.2)
                real = time.perf_counter() - t_created
                if st["status"] != "ok":
                    raise SystemExit(f"run {run['run_id']} ended {st['status']}: "
                                     f"{st.get('error')}")
                out.append((kind, float(eta), real))
                print(f"   {kind:<16} ETA {eta:6.1f} s  real {real:6.1f} s  "
                      f"real/ETA {real / eta:5.2f}x", flush=True)
    finally:
        for line in stack.down(settings):
            print(f"   [down] {line}", flush=True)
        shutil.rmtree(data, ignore_errors=True)
    return up_s, out


def main_eta(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-eta-") as tmp:
        root = Path(tmp)
        clip = synth.scene_cuts(root / "clip.mp4", cuts_s=tuple(float(c) for c in range(
            3, int(args.duration), 3)), duration_s=args.duration, fps=24.0, size=(640, 360))
        numba_dir = root / "numba"
        if not args.cold_numba_cache:
            print(f"numba cache primed in {prime_numba_cache(numba_dir):.1f} s", flush=True)
        if args.profile != "fast":  # Triton's models: built once, before either stack starts
            from trendflow.settings import get_settings
            from trendflow.triton.build import MODELS, build_model

            repo = get_settings().triton.repository.resolve()
            t = time.perf_counter()
            built = [build_model(repo, name).status for name in MODELS]
            print(f"triton models {built} in {time.perf_counter() - t:.1f} s", flush=True)
        results = {warm: eta_runs(args, clip.path, warm, numba_dir) for warm in (False, True)}
    print(f"\nprofile {args.profile}, {clip.duration_s:g} s 640x360 clip, "
          f"{os.cpu_count()} cores; real = run created -> ok seen by the client")
    print("| warm_workers | `up` | run | ETA shown | real | real / ETA | error |")
    print("|---|---|---|---|---|---|---|")
    for warm, (up_s, runs) in results.items():
        groups: dict[str, list[tuple[float, float]]] = {}
        for kind, eta, real in runs:
            groups.setdefault(kind, []).append((eta, real))
        for kind, pairs in groups.items():
            eta = statistics.median(e for e, _ in pairs)
            real = statistics.median(r for _, r in pairs)
            ratio = statistics.median(r / e for e, r in pairs)
            print(f"| {'on' if warm else 'off (baseline)'} | {up_s:.1f} s | {kind} "
                  f"(n={len(pairs)}) | {eta:.1f} s | {real:.1f} s | **{ratio:.2f}x** | "
                  f"{100 * (ratio - 1):+.0f} % |")
    first = {w: next(r / e for k, e, r in runs if k == "first after up")
             for w, (_, runs) in results.items()}
    print(f"first run after up, real / ETA: {first[False]:.2f}x without warming (error "
          f"{100 * abs(first[False] - 1):.0f} %), {first[True]:.2f}x with it (error "
          f"{100 * abs(first[True] - 1):.0f} %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calib", default="6,9,12,15", help="calibration clip durations (s)")
    parser.add_argument("--eval", default="7,10,13,16", help="evaluation clip durations (s)")
    parser.add_argument("--eta", action="store_true",
                        help="measure the ETA against real runs on the local stack instead")
    parser.add_argument("--profile", default="fast", help="--eta: the profile of the runs")
    parser.add_argument("--duration", type=float, default=20.0, help="--eta: clip length, s")
    parser.add_argument("--warm-runs", type=int, default=3, help="--eta: warm runs per stack")
    parser.add_argument("--cold-numba-cache", action="store_true",
                        help="--eta: start with an empty numba cache (a machine's first up)")
    args = parser.parse_args()
    if args.eta:
        main_eta(args)
        return
    calib = [float(x) for x in args.calib.split(",")]
    evaluation = [float(x) for x in args.eval.split(",")]
    names = list(component_names())
    profile = ProfileConfig.parse({"components": [{"name": n} for n in names],
                                   "render": {"engine": "template"}})
    fps = profile.sampling.fps
    prices = {p.component_name: p for p in load_seed().prices}
    with tempfile.TemporaryDirectory(prefix="bench-estimate-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        asyncio.run(measure(profile, [6.0], root, "warm"))
        print(f"warm-up run: {time.perf_counter() - t0:.1f} s (not measured)")
        fit_runs = asyncio.run(measure(profile, calib, root, "calib"))
        eval_runs = asyncio.run(measure(profile, evaluation, root, "eval"))

    print(f"calibration clips {calib} s, evaluation clips {evaluation} s, timeline {fps:g} fps")
    print(f"{'component':<20} {'unit':<13} {'seed s/unit':>12} {'fit s/unit':>12} "
          f"{'MdAPE seed':>11} {'MdAPE fit':>10} {'ratio':>7}")
    base_all, fit_all = [], []
    for name in names:
        price = prices[name]
        units_fit = [float(units_for(price, d, fps)) for d, _ in fit_runs]
        fitted = fit_seconds_per_unit(units_fit, [t[name] for _, t in fit_runs])
        seed_per_unit = float(price.cpu_s_per_unit + price.gpu_s_per_unit)
        units_eval = [float(units_for(price, d, fps)) for d, _ in eval_runs]
        actual = [t[name] for _, t in eval_runs]
        base_err = mdape([u * seed_per_unit for u in units_eval], actual)
        fit_err = mdape([u * float(fitted) for u in units_eval], actual)
        base_all.append(base_err)
        fit_all.append(fit_err)
        ratio = base_err / fit_err if fit_err > 0 else float("inf")
        print(f"{name:<20} {price.unit:<13} {seed_per_unit:>12.6f} {float(fitted):>12.6f} "
              f"{base_err:>10.1f}% {fit_err:>9.1f}% {ratio:>6.1f}x")
    base_med, fit_med = statistics.median(base_all), statistics.median(fit_all)
    print(f"median over components: seed {base_med:.1f}%  calibrated {fit_med:.1f}%  "
          f"(target <= 30 %; seed/calibrated = {base_med / max(fit_med, 1e-9):.1f}x)")


if __name__ == "__main__":
    main()
