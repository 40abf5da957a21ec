"""``motion``'s cost per analysis frame: DIS optical flow (2.x) against Farnebäck (1.x), same
frames, same run, next to the bare decode of the same clip.

    .venv/bin/python benchmarks/bench_motion.py [--seconds 20]

Generates the clip of ``bench_components.py`` (1920×1080 at 30 fps, a new textured scene every
5 s, each panning), decodes it at the analysis timeline (12 fps, 320 px high: the bare filter
graph of ``bench_segmenter.py``, timed), then runs ``motion``'s per-frame work on the same
frames twice: the component as it is (grey 72 px + DIS ``ULTRAFAST`` + the measures) and the 1.x
algorithm (grey 72 px + Farnebäck, pyramid 0.5 × 3, window 15, 2 iterations). Prints ms per
frame, the ratio, each against the decode per frame, and how far the two agree (median camera
speed and mean motion over the clip).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_components import make_clip  # noqa: E402
from trendflow.pipeline.components.motion import (  # noqa: E402
    WORK_HEIGHT,
    _grey_small,
    flow_measures,
)

FPS, HEIGHT = 12.0, 320


def decode(path: Path) -> tuple[list[np.ndarray], float]:
    """The timeline frames (fps, lanczos scale, RGB) and the seconds the decode took."""
    frames: list[np.ndarray] = []
    started = time.perf_counter()
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        g = av.filter.Graph()
        node: Any = g.add_buffer(template=vs)
        for f in (g.add("fps", f"{FPS:g}"), g.add("scale", f"-2:{HEIGHT}:flags=lanczos"),
                  g.add("format", "rgb24"), g.add("buffersink")):
            node.link_to(f)
            node = f
        g.configure()
        for frame in [*c.decode(vs), None]:
            g.push(frame)
            while True:
                try:
                    frames.append(cast(av.VideoFrame, g.pull()).to_ndarray())
                except (av.BlockingIOError, av.EOFError):
                    break
    return frames, time.perf_counter() - started


def farneback_measures(prev: np.ndarray, cur: np.ndarray, fps: float) -> tuple[float, ...]:
    """``motion`` 1.x: Farnebäck flow and the same measures."""
    flow = cv2.calcOpticalFlowFarneback(prev, cur, cast(Any, None), 0.5, 3, 15, 2, 5, 1.1, 0)
    flow = flow.reshape(-1, 2).astype(np.float64) * (fps / WORK_HEIGHT)
    magnitude = float(np.hypot(flow[:, 0], flow[:, 1]).mean())
    cam = np.median(flow, axis=0)
    residual = flow - cam
    obj = float(np.hypot(residual[:, 0], residual[:, 1]).mean())
    return magnitude, float(cam[0]), float(cam[1]), float(np.hypot(cam[0], cam[1])), obj


def per_frame(frames: list[np.ndarray], measure: Any) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    prev, rows = None, []
    for frame in frames:
        cur = _grey_small(frame)
        if prev is not None:
            rows.append(measure(prev, cur, FPS))
        prev = cur
    return (time.perf_counter() - started) / len(frames), np.array(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tf-bench-motion-") as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4", args.seconds, (1920, 1080), 30.0)
        frames, decode_s = decode(clip.path)
    decode_ms = decode_s / len(frames) * 1000
    dis_s, dis = per_frame(frames, flow_measures)
    fb_s, fb = per_frame(frames, farneback_measures)
    print(f"{len(frames)} timeline frames ({args.seconds:g} s 1080p30 at {FPS:g} fps, "
          f"{HEIGHT} px), {cv2.getNumThreads()} OpenCV threads")
    print("| motion | ms per frame | ÷ bare decode per frame | mean motion | median camera speed |")
    print("|---|---|---|---|---|")
    print(f"| bare decode | {decode_ms:.2f} | 1.00× | — | — |")
    for name, s, rows in (("2.x DIS ultrafast", dis_s, dis), ("1.x Farnebäck", fb_s, fb)):
        print(f"| {name} | {s * 1000:.2f} | {s * 1000 / decode_ms:.2f}× | {rows[:, 0].mean():.3f} "
              f"| {np.median(rows[:, 3]):.3f} |")
    print(f"DIS is {fb_s / dis_s:.1f}× cheaper; per-frame camera speed correlation "
          f"{np.corrcoef(dis[:, 3], fb[:, 3])[0, 1]:.3f}, mean motion ratio "
          f"{dis[:, 0].mean() / fb[:, 0].mean():.3f} (frame heights per second)")


if __name__ == "__main__":
    main()
