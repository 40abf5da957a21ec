"""A GPU worker actor merges the model requests of chunks of different runs (real Ray, real
Triton): what the scheduler sends it when the runs of one batch map at the same time."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest
import ray
from skimage import data

from tests.fixtures.triton import TritonServer
from tests.pipeline.components._harness import make_context, union_chunks
from trendflow.actors.workers import ComponentSpec, ComponentWorker, MapOutcome, worker_options
from trendflow.pipeline.components.faces import Faces
from trendflow.settings import RuntimeSettings, TritonSettings


def _face_frames(n: int, shift: int) -> np.ndarray:
    face = cv2.resize(data.astronaut(), (72, 72))
    frames = np.full((n, 96, 160, 3), 70, np.uint8)
    for i in range(n):
        x = (shift + 7 * i) % 80
        frames[i, 12:84, x : x + 72] = face
    return frames


@pytest.fixture()
def gpu_worker(ray_cluster: dict[str, object], triton_server: TritonServer) -> Any:
    triton = TritonSettings(url=triton_server.info.grpc_url, protocol="grpc")
    runtime = RuntimeSettings(gpu_worker_concurrency=8, gpu_batch_wait_ms=1000.0)
    actor = (
        ray.remote(ComponentWorker)
        .options(**worker_options(cpus=0.1, concurrency=runtime.gpu_worker_concurrency))
        .remote("cpu", triton, runtime)
    )
    yield actor
    ray.kill(actor, no_restart=True)


def test_chunks_of_two_runs_share_one_model_call(gpu_worker: Any) -> None:
    """Two runs' first chunks (8 faces frames each at 2 fps) arrive together: one call of 16
    rows, and each run gets exactly what it gets alone."""
    fps = 12.0
    runs: dict[str, tuple[Any, Any, Any]] = {}
    for k, run_id in enumerate(("run-a", "run-b")):
        frames = _face_frames(48, shift=11 * k)
        ctx = make_context(Faces, n_frames=48, fps=fps, size=(160, 96))
        ctx.model = "face_detector:1"
        assert ctx.frame_indices is not None and len(ctx.frame_indices) == 8
        [chunk] = list(union_chunks(frames, ctx.frame_indices, fps, 48))
        spec = ComponentSpec(run_id, "faces", Faces.default_params())
        runs[run_id] = (spec, ray.put(ctx), ray.put(chunk))

    merged = ray.get([gpu_worker.map.remote(spec, ctx, None, chunk)
                      for spec, ctx, chunk in runs.values()])
    stats = ray.get(gpu_worker.batch_stats.remote())
    assert stats["requests"] == 2 and stats["calls"] == 1 and stats["rows"] == 16, stats

    alone = [ray.get(gpu_worker.map.remote(spec, ctx, None, chunk))
             for spec, ctx, chunk in runs.values()]
    assert ray.get(gpu_worker.batch_stats.remote())["calls"] == 3  # one each, nothing to merge
    for m, a in zip(merged, alone, strict=True):
        assert isinstance(m, MapOutcome) and isinstance(a, MapOutcome)
        assert sorted(m.partial) == sorted(a.partial)
        assert int(m.partial["face_count"].sum()) >= 2  # the detector found faces
        for key in a.partial:
            np.testing.assert_array_equal(m.partial[key], a.partial[key], err_msg=key)
