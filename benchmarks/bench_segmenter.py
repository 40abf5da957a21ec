"""Segmenter benchmark (prints figures; not a test).

1. Throughput: the full Segmenter (prepare: probe + packet scan + plan; iter_chunks over every
   timeline frame) on a 60 s 1080p30 H.264 clip, against a bare PyAV decode through the filter
   graph ``fps=12,scale=-2:320:flags=lanczos,format=rgb24`` of the same file in the same run.
   Ratio = Segmenter throughput / bare throughput (target ≥ 0.9).
2. Memory: peak RSS of a fresh process that segments a 20 min clip vs one that segments a 1 min
   clip of the same picture size (target ≤ 1.5×).

    .venv/bin/python benchmarks/bench_segmenter.py [--workdir DIR] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from trendflow.media import synth
from trendflow.pipeline.segmenter import Segmenter, UploadSource
from trendflow.pipeline.types import VideoMeta
from trendflow.settings import SegmenterSettings


def make_1080p(path: Path, seconds: float = 60.0, fps: float = 30.0) -> Path:
    """A moving, textured 1080p30 clip (a slow pan plus a scene change every 5 s)."""
    if path.exists():
        return path
    w, h = 1920, 1080
    base = synth._texture(h, w + 4 * int(seconds * fps) + 16, 5)
    n = int(seconds * fps)

    def frames():  # noqa: ANN202
        for i in range(n):
            frame = base[:, 4 * i : 4 * i + w].copy()
            frame[..., (i // int(5 * fps)) % 3] //= 2
            yield frame

    synth.write_video(path, frames(), fps=fps, audio=synth._sine(440, seconds, 0.2))
    return path


def bare_decode(path: Path, fps: float = 12.0, height: int = 320) -> int:
    """Timeline frames of ``path`` through the bare filter graph (fps, lanczos scale, RGB)."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        g = av.filter.Graph()
        src = g.add_buffer(template=vs)
        chain = [g.add("fps", f"{fps:g}"), g.add("scale", f"-2:{height}:flags=lanczos"),
                 g.add("format", "rgb24"), g.add("buffersink")]
        node = src
        for f in chain:
            node.link_to(f)
            node = f
        g.configure()
        n = 0
        for frame in c.decode(vs):
            g.push(frame)
            while True:
                try:
                    g.pull().to_ndarray()
                    n += 1
                except (av.BlockingIOError, av.EOFError):
                    break
        g.push(None)
        while True:
            try:
                g.pull().to_ndarray()
                n += 1
            except (av.BlockingIOError, av.EOFError):
                break
        return n


def segment(path: Path, workdir: Path) -> int:
    seg = Segmenter(SegmenterSettings())
    prepared = seg.prepare(UploadSource(path, VideoMeta()), workdir)
    n = 0
    for chunk in seg.iter_chunks(prepared, np.arange(prepared.timeline.n_frames)):
        n += len(chunk.frame_indices)
    seg.release(prepared)
    return n


def rss_child(path: str, workdir: str) -> None:
    n = segment(Path(path), Path(workdir))
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forking parent.
    status = Path("/proc/self/status").read_text().splitlines()
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({"frames": n, "peak_rss_mb": peak_kb / 1024}))


def measure_rss(path: Path, workdir: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--rss-child", str(path), str(workdir)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rss-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(*args.rss_child)
        return
    root = args.workdir or Path(tempfile.mkdtemp(prefix="bench-segmenter-"))
    root.mkdir(parents=True, exist_ok=True)

    t = time.perf_counter()
    clip = make_1080p(root / "1080p30_60s.mp4")
    print(f"generated 60 s 1080p30 clip in {time.perf_counter() - t:.1f} s")
    bare, full = [], []
    for r in range(args.repeats):
        t = time.perf_counter()
        nb = bare_decode(clip)
        bare.append(time.perf_counter() - t)
        t = time.perf_counter()
        ns = segment(clip, root / f"work-{r}")
        full.append(time.perf_counter() - t)
        if nb != ns:
            print(f"frame counts differ: bare {nb}, segmenter {ns}")
    tb, ts = min(bare), min(full)
    print(f"bare PyAV graph : {nb} frames in {tb:.2f} s = {nb / tb:.1f} frames/s "
          f"({60 / tb:.2f}x real time)")
    print(f"full Segmenter  : {ns} frames in {ts:.2f} s = {ns / ts:.1f} frames/s "
          f"({60 / ts:.2f}x real time)")
    print(f"throughput ratio (Segmenter / bare) = {tb / ts:.3f}   (target >= 0.9)")

    t = time.perf_counter()
    short = synth.long_still(root / "1min.mp4", duration_s=60.0, fps=6.0, size=(640, 360),
                             audio="tone")
    long = synth.long_still(root / "20min.mp4", duration_s=19.9 * 60, fps=6.0, size=(640, 360),
                            audio="tone")
    print(f"generated 1 min and 19.9 min 640x360 clips in {time.perf_counter() - t:.1f} s")
    a = measure_rss(short.path, root / "rss-1")
    b = measure_rss(long.path, root / "rss-20")
    print(f"peak RSS  1 min : {a['peak_rss_mb']:.0f} MB ({a['frames']:.0f} timeline frames)")
    print(f"peak RSS 20 min : {b['peak_rss_mb']:.0f} MB ({b['frames']:.0f} timeline frames)")
    print(f"RSS ratio (20 min / 1 min) = {b['peak_rss_mb'] / a['peak_rss_mb']:.2f}   "
          "(target <= 1.5)")


if __name__ == "__main__":
    main()
