"""CPU cost and memory of every CPU component on a 60 s clip, against the Segmenter's decode.

    .venv/bin/python benchmarks/bench_components.py                 # print the table
    .venv/bin/python benchmarks/bench_components.py --write-seed    # and update seed.json

What it does, all in this process:

1. generates a clip (default 60 s, 1920×1080 at 30 fps, H.264 ``ultrafast``): a new textured
   scene every 5 s, each panning; audio = a 120 BPM click track over a quiet tone and noise;
2. the **baseline**: ``Segmenter.prepare`` + decoding every timeline frame (the union of the CPU
   set: ``shot_detection`` and ``motion`` read every frame) + ``extract_audio``;
3. each component: ``setup`` → ``map`` over every chunk (``select_chunk``) → ``reduce`` →
   ``encode_result``, exactly as the runner does, on the frames decoded in step 2;
4. prints per component: sampled units (frames, or audio seconds), wall and CPU seconds
   (``time.process_time``: every thread of the process), CPU seconds per analysis-minute, CPU
   seconds per unit, and peak RSS growth (resident memory sampled every 2 ms, above the level
   just before the component started). Audio components are also run on 4× longer audio to
   measure how their memory grows with duration; their memory figure for the seed is the value
   extrapolated to the 20-minute maximum;
5. the whole CPU set vs the decode: the ratio of CPU seconds (target < 1).

``--write-seed`` copies the measured figures into ``trendflow/db/seed/seed.json``
(``resources`` of each CPU component and ``pricing.cpu_s_per_unit``), with a note saying so.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))
sys.path.insert(0, str(ROOT))

from trendflow.contracts.identity import RunIdentity  # noqa: E402
from trendflow.contracts.manifest import utc_now  # noqa: E402
from trendflow.contracts.npz import encode_result  # noqa: E402
from trendflow.media import synth  # noqa: E402
from trendflow.pipeline.components.base import Component, Input, select_chunk  # noqa: E402
from trendflow.pipeline.components.registry import all_components  # noqa: E402
from trendflow.pipeline.execution import build_context  # noqa: E402
from trendflow.pipeline.segmenter import PreparedVideo, Segmenter, UploadSource  # noqa: E402
from trendflow.pipeline.types import AudioTrack, FrameChunk, VideoMeta  # noqa: E402
from trendflow.settings import SegmenterSettings  # noqa: E402

SEED = ROOT / "trendflow" / "db" / "seed" / "seed.json"
MAX_DURATION_MIN = 20.0
_MB = 1024 * 1024


class PeakRss:
    """Resident memory sampled every 2 ms in a thread while the block runs."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakRss:
        gc.collect()
        self.baseline = self.peak = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.002)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / _MB


@dataclass
class Measured:
    name: str
    unit: str  # "frame" | "audio_second" | "run"
    units: float
    wall_s: float
    cpu_s: float
    peak_mb: float
    mb_per_min: float = 0.0  # memory growth per minute of audio (audio components)


def make_clip(path: Path, seconds: float, size: tuple[int, int], fps: float) -> synth.Clip:
    width, height = size
    n = round(seconds * fps)
    scene_len = round(5 * fps)
    rng = np.random.default_rng(0)

    def frames() -> Iterator[np.ndarray]:
        strip: np.ndarray | None = None
        for i in range(n):
            if i % scene_len == 0:
                small = rng.integers(0, 256, (height // 16, (width + 6 * scene_len) // 16 + 1, 3))
                strip = np.repeat(np.repeat(small.astype(np.uint8), 16, 0), 16, 1)
            assert strip is not None
            x = 6 * (i % scene_len)
            yield strip[:height, x : x + width]

    rate = synth.AUDIO_RATE
    t = np.arange(round(seconds * rate)) / rate
    audio = 0.05 * np.sin(2 * np.pi * 220 * t) + rng.normal(0, 0.01, len(t))
    click = 0.8 * np.sin(2 * np.pi * 1000 * t[:480]) * np.hanning(480)
    for beat in np.arange(0, seconds - 0.02, 0.5):
        start = round(beat * rate)
        audio[start : start + 480] += click
    synth.write_video(path, frames(), fps=fps, audio=audio.astype(np.float32))
    return synth.Clip(path, n / fps, fps, width, height, True, bpm=120.0)


def timed(fn: Callable[[], object]) -> tuple[object, float, float, PeakRss]:
    with PeakRss() as mem:
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return out, wall, cpu, mem


def run_component(
    cls: type[Component],
    prepared: PreparedVideo,
    chunks: list[FrameChunk],
    audio: AudioTrack,
    identity: RunIdentity,
) -> tuple[float, float, PeakRss]:
    def work() -> bytes:
        comp = cls()
        ctx = build_context(
            cls, info=prepared.info, meta=prepared.meta, timeline=prepared.timeline, audio=audio
        )
        comp.setup(ctx)
        partials = []
        if ctx.frame_indices is not None:
            for chunk in chunks:
                mine = select_chunk(chunk, ctx.frame_indices)
                if len(mine.frame_indices):
                    partials.append(comp.map(mine))
        result = comp.reduce(partials)
        return encode_result(identity, cls, result, model=None, created_at=utc_now())

    _, wall, cpu, mem = timed(work)
    return wall, cpu, mem


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--clip", type=Path, help="use this video instead of generating one")
    parser.add_argument("--write-seed", action="store_true", help=f"update {SEED.name}")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench-components-"))
    if args.clip is None:
        t0 = time.perf_counter()
        clip_path = make_clip(
            tmp / "bench.mp4", args.seconds, (args.width, args.height), args.fps
        ).path
        print(f"generated {clip_path.name}: {args.seconds:g} s {args.width}x{args.height}"
              f"@{args.fps:g} in {time.perf_counter() - t0:.1f} s")
    else:
        clip_path = args.clip

    classes = {n: c for n, c in all_components().items() if c.RESOURCES.gpu_memory_mb == 0}
    segmenter = Segmenter(SegmenterSettings())
    prepared = segmenter.prepare(UploadSource(clip_path, VideoMeta(title="bench")), tmp / "w")
    tl = prepared.timeline
    minutes = tl.duration_s / 60.0
    identity = RunIdentity.create(platform_id="upload", video_id="up-" + "0" * 16,
                                  config_hash="0" * 64)

    # Warm-up outside the measurement: imports and numba's JIT (cached on disk).
    warm = AudioTrack({16_000: np.zeros(16_000 * 6, np.float32),
                       48_000: np.zeros(48_000 * 6, np.float32)}, 6.0)
    for cls in classes.values():
        if not cls.frame_based():
            run_component(cls, prepared, [], warm, identity)

    def decode() -> tuple[list[FrameChunk], AudioTrack]:
        union = np.arange(tl.n_frames, dtype=np.int64)
        return list(segmenter.iter_chunks(prepared, union)), segmenter.extract_audio(prepared)

    (chunks, audio), dec_wall, dec_cpu, dec_mem = timed(decode)  # type: ignore[misc]
    print(f"timeline: {tl.n_frames} frames {tl.width}x{tl.height} @ {tl.fps:g} fps "
          f"({tl.duration_s:.1f} s), {len(chunks)} chunks")

    rows: list[Measured] = []
    for name, cls in classes.items():
        wall, cpu, mem = run_component(cls, prepared, chunks, audio, identity)
        if cls.frame_based():
            assert cls.SAMPLING is not None
            unit, units = "frame", float(len(cls.SAMPLING.indices(tl.n_frames, tl.fps)))
        elif Input.AUDIO in cls.INPUTS:
            unit, units = "audio_second", audio.duration_s
        else:
            unit, units = "run", 1.0
        row = Measured(name, unit, units, wall, cpu, max(mem.growth_mb, 0.0))
        if unit == "audio_second":
            longer = AudioTrack({r: np.tile(x, 4) for r, x in audio.samples.items()},
                                4 * audio.duration_s)
            _, _, mem4 = run_component(cls, prepared, [], longer, identity)
            row.mb_per_min = max(0.0, (mem4.growth_mb - mem.growth_mb) / (3 * minutes))
        rows.append(row)

    total_cpu = sum(r.cpu_s for r in rows)
    total_wall = sum(r.wall_s for r in rows)
    head = (f"{'component':<18} {'unit':>12} {'units':>7} {'wall s':>7} {'CPU s':>7} "
            f"{'CPU s/min':>9} {'CPU s/unit':>11} {'peak MB':>8} {'MB/min':>7}")
    print()
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r.name:<18} {r.unit:>12} {r.units:>7.0f} {r.wall_s:>7.3f} {r.cpu_s:>7.3f} "
              f"{r.cpu_s / minutes:>9.3f} {r.cpu_s / r.units:>11.6f} {r.peak_mb:>8.1f} "
              f"{r.mb_per_min:>7.1f}")
    print("-" * len(head))
    print(f"{'CPU set':<18} {'':>12} {'':>7} {total_wall:>7.3f} {total_cpu:>7.3f} "
          f"{total_cpu / minutes:>9.3f}")
    print(f"{'decode (baseline)':<18} {'':>12} {'':>7} {dec_wall:>7.3f} {dec_cpu:>7.3f} "
          f"{dec_cpu / minutes:>9.3f} {'':>11} {dec_mem.growth_mb:>8.1f}")
    print(f"\nCPU set / decode: {total_cpu / dec_cpu:.2f} (CPU s), "
          f"{total_wall / dec_wall:.2f} (wall s); target < 1")
    print(f"machine: {psutil.cpu_count()} CPUs; source {args.width}x{args.height}@{args.fps:g}")

    if args.write_seed:
        write_seed(rows, source=f"{args.seconds:g} s {args.width}x{args.height}@{args.fps:g}")
    return 0


def write_seed(rows: list[Measured], *, source: str) -> None:
    """Copy the figures into the seed's CPU component entries (other entries untouched)."""
    data = json.loads(SEED.read_text(encoding="utf-8"))
    stamp = time.strftime("%Y-%m-%d")
    for r in rows:
        entry = data["components"].get(r.name)
        if entry is None:
            print(f"seed: no entry for {r.name}; skipped", file=sys.stderr)
            continue
        peak = r.peak_mb + r.mb_per_min * (MAX_DURATION_MIN - 1.0)
        # Rounded up to 16 MB with a 64 MB floor: RSS sampling cannot see short spikes.
        memory = max(64, 16 * math.ceil(peak / 16))
        entry["resources"].update(
            memory_per_task=memory,
            gpu_memory_per_task=0,
            cpu_cores_per_task="1",
            source=(
                f"measured by benchmarks/bench_components.py on {stamp} ({source} clip): "
                f"peak RSS growth {r.peak_mb:.1f} MB"
                + (f" + {r.mb_per_min:.1f} MB per audio minute, at 20 min" if r.mb_per_min else "")
                + "; rounded up to 16 MB, floor 64 MB; CPU cores: one thread of work"
            ),
        )
        per_unit = r.cpu_s / r.units
        entry["pricing"]["cpu_s_per_unit"] = f"{per_unit:.6f}".rstrip("0").rstrip(".") or "0"
        entry["pricing"]["source"] = (
            f"cpu_s_per_unit measured by benchmarks/bench_components.py on {stamp} "
            f"({source} clip, per {r.unit}); base cost, rates and markup are starting prices"
        )
    SEED.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"updated {SEED}")


if __name__ == "__main__":
    sys.exit(main())
