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

    .venv/bin/python benchmarks/bench_estimate.py [--calib 6,9,12] [--eval 7,10,14]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

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
from trendflow.storage.local import LocalStore


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calib", default="6,9,12,15", help="calibration clip durations (s)")
    parser.add_argument("--eval", default="7,10,13,16", help="evaluation clip durations (s)")
    args = parser.parse_args()
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
