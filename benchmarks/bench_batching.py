"""A GPU actor's cross-chunk batching: concurrent maps through one BatchingClient vs alone.

    .venv/bin/python benchmarks/bench_batching.py                    # face_detector, 8 maps
    .venv/bin/python benchmarks/bench_batching.py --maps 8 --chunks 64 --frames 8

What a GPU actor does when it maps ``--maps`` chunks at once (``runtime.gpu_worker_concurrency``):
each map sends its chunk's ``--frames`` analysis frames (320×568, a real face) to
``face_detector``. Two ways, same server, same threads, same requests, alternating, median of
``--repeats`` passes:

* **baseline — each map alone**: one ``TritonClient`` per thread, a request per chunk (what the
  actor did before merging; Triton's own dynamic batcher may still merge at the server);
* **merged**: every thread calls one :class:`~trendflow.triton.batching.BatchingClient`, which
  sends batches of up to the model's ``max_batch_size`` (16) rows.

Prints frames/s each way, the ratio (target >= 1.0: merging must never cost throughput), server
calls and rows per call. The machine is shared and Triton runs on CPU here, so compare ratios.
On a GPU instance (``--model-config-name=gpu``) the larger batches are where the gain is.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.triton import built_repository  # noqa: E402
from trendflow.triton.batching import BatchingClient  # noqa: E402
from trendflow.triton.client import InferenceClient, TritonClient  # noqa: E402
from trendflow.triton.server import free_port, start_server, stop_server  # noqa: E402

MODEL = "face_detector"


def _chunks(n: int, frames: int) -> list[np.ndarray]:
    import cv2
    from skimage import data

    face = cv2.resize(data.astronaut(), (160, 160))
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        batch = np.full((frames, 320, 568, 3), 60, np.uint8)
        for f in range(frames):
            y, x = int(rng.integers(0, 160)), int(rng.integers(0, 408))
            batch[f, y : y + 160, x : x + 160] = face
        out.append(batch)
    return out


def _pass(clients: Sequence[InferenceClient], chunks: list[np.ndarray]) -> float:
    """All chunks through ``len(clients)`` threads (thread i uses clients[i]); seconds."""
    todo = list(range(len(chunks)))
    lock = threading.Lock()

    def worker(client: InferenceClient) -> None:
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop()
            client.infer(MODEL, "1", {"IMAGE": chunks[i]})

    started = time.perf_counter()
    with ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(worker, clients))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--maps", type=int, default=8, help="chunks mapped at once")
    parser.add_argument("--chunks", type=int, default=48)
    parser.add_argument("--frames", type=int, default=8, help="frames per chunk (2 fps × 4 s)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--wait-ms", type=float, default=5.0)
    args = parser.parse_args()

    repo = built_repository()
    work = Path(tempfile.mkdtemp(prefix="tf-bench-batching-"))
    info = start_server(repo, work, http_port=free_port(), grpc_port=free_port(),
                        metrics_port=free_port())
    try:
        chunks = _chunks(args.chunks, args.frames)
        alone = [TritonClient(info.grpc_url) for _ in range(args.maps)]
        merged = BatchingClient(lambda: TritonClient(info.grpc_url),
                                max_wait_s=args.wait_ms / 1000.0)
        _pass(alone, chunks[: args.maps])  # warm-up: connections, sessions
        _pass([merged] * args.maps, chunks[: args.maps])
        warm_calls, warm_rows = merged.stats.calls, merged.stats.rows
        t_alone, t_merged = [], []
        for _ in range(args.repeats):
            t_alone.append(_pass(alone, chunks))
            t_merged.append(_pass([merged] * args.maps, chunks))
        frames = args.chunks * args.frames
        a, m = frames / statistics.median(t_alone), frames / statistics.median(t_merged)
        calls = merged.stats.calls - warm_calls
        rows_per_call = (merged.stats.rows - warm_rows) / calls
        print(f"{MODEL}: {args.maps} maps at once, {args.chunks} chunks × {args.frames} frames, "
              f"median of {args.repeats}")
        print(f"  each map alone   {a:8.1f} frames/s   {args.frames} rows per call")
        print(f"  merged           {m:8.1f} frames/s   {rows_per_call:.1f} rows per call "
              f"({calls // args.repeats} calls per pass instead of {args.chunks})")
        print(f"  merged / alone   x{m / a:.2f} (target >= 1.0)")
        print(json.dumps({"alone_fps": round(a, 1), "merged_fps": round(m, 1),
                          "ratio": round(m / a, 3), "rows_per_call": round(rows_per_call, 2)}))
        merged.close()
        for c in alone:
            c.close()
    finally:
        stop_server(work)


if __name__ == "__main__":
    main()
