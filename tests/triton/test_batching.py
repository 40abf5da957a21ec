"""Cross-request batching (:class:`BatchingClient`) against the real Triton server.

What a user would notice: merged requests give every caller exactly the rows it would have got
alone (so the Ray runtime's arrays stay identical to the local runner's), concurrent callers
really share server calls, and one bad request fails alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np
import pytest
from skimage import data

from tests.fixtures.triton import TritonServer
from trendflow.errors import InferenceRejected
from trendflow.triton.batching import BatchingClient
from trendflow.triton.client import TritonClient, decode_json_rows


@pytest.fixture()
def batching(triton_server: TritonServer) -> Iterator[BatchingClient]:
    client = BatchingClient(lambda: triton_server.client(backoff_s=0.2), max_wait_s=0.05)
    yield client
    client.close()


def _frames(n: int, seed: int, size: tuple[int, int] = (180, 320)) -> np.ndarray:
    """Varied frames: the astronaut (a face) shifted, scaled and noised, and plain scenes."""
    rng = np.random.default_rng(seed)
    base = data.astronaut()
    out = np.empty((n, *size, 3), np.uint8)
    for i in range(n):
        if i % 3 == 2:
            out[i] = rng.integers(0, 255, (*size, 3), dtype=np.uint8) // 4 + 90
            continue
        scale = 0.35 + 0.1 * (i % 4)
        small = cv2.resize(base, None, fx=scale, fy=scale)
        canvas = np.full((*size, 3), 40 + 10 * i % 120, np.uint8)
        y = int(rng.integers(0, size[0] - min(size[0], small.shape[0]) + 1))
        x = int(rng.integers(0, size[1] - min(size[1], small.shape[1]) + 1))
        crop = small[: size[0] - y, : size[1] - x]
        canvas[y : y + crop.shape[0], x : x + crop.shape[1]] = crop
        out[i] = canvas
    return out


def _concurrently(
    calls: list[Callable[[], dict[str, np.ndarray]]],
) -> list[dict[str, np.ndarray]]:
    """Run ``calls`` at once from as many threads (a threaded actor's maps)."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _detections(out: Mapping[str, np.ndarray]) -> list[tuple[np.ndarray, ...]]:
    """Per image: its boxes, scores and landmarks (the padding rows dropped)."""
    return [
        (out["BOXES"][b, :k], out["SCORES"][b, :k], out["LANDMARKS"][b, :k])
        for b, k in enumerate(int(c) for c in out["COUNT"][:, 0])
    ]


def test_face_detector_rows_identical_merged_or_alone(
    triton: TritonClient, batching: BatchingClient
) -> None:
    chunks = [_frames(4, seed) for seed in range(4)]  # 4 callers × 4 frames ≤ max batch 16
    alone = [_detections(triton.infer("face_detector", "1", {"IMAGE": c})) for c in chunks]
    merged = _concurrently([
        (lambda c=c: batching.infer("face_detector", "1", {"IMAGE": c})) for c in chunks
    ])
    assert batching.stats.merged_calls >= 1
    assert batching.stats.calls < len(chunks)
    assert sum(len(d) > 0 for got in alone for d in got if len(d[0])) > 0  # faces were found
    for want, out in zip(alone, merged, strict=True):
        got = _detections(out)
        assert len(got) == len(want)
        for w, g in zip(want, got, strict=True):
            for a, b in zip(w, g, strict=True):
                np.testing.assert_array_equal(a, b)


def test_face_emotion_and_ocr_rows_identical(
    triton: TritonClient, batching: BatchingClient
) -> None:
    faces = [np.random.default_rng(s).integers(0, 255, (n, 64, 64), dtype=np.uint8)
             for s, n in enumerate((3, 7, 1, 12))]
    alone = [triton.infer("face_emotion", "1", {"FACE": f})["PROBS"] for f in faces]
    merged = _concurrently([
        (lambda f=f: batching.infer("face_emotion", "1", {"FACE": f})) for f in faces
    ])
    for want, out in zip(alone, merged, strict=True):
        np.testing.assert_array_equal(out["PROBS"], want)

    pages = []
    for i, word in enumerate(("TREND", "FLOW 42", "HELLO")):
        img = np.full((96, 320, 3), 255, np.uint8)
        cv2.putText(img, word, (10, 64), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (0, 0, 0), 3)
        pages.append(img[None] if i != 1 else np.stack([img, img[:, ::-1].copy()]))
    alone_texts = [decode_json_rows(triton.infer("ocr", "1", {"IMAGE": p})["TEXTS"])
                   for p in pages]
    merged_out = _concurrently([(lambda p=p: batching.infer("ocr", "1", {"IMAGE": p}))
                                for p in pages])
    assert [decode_json_rows(o["TEXTS"]) for o in merged_out] == alone_texts
    assert "TREND" in str(alone_texts[0])


def test_requests_never_exceed_the_model_batch(batching: BatchingClient) -> None:
    """face_detector serves 16 rows per call: 5 callers × 6 frames need at least 2 calls."""
    chunks = [_frames(6, 10 + s, (90, 160)) for s in range(5)]
    outs = _concurrently([
        (lambda c=c: batching.infer("face_detector", "1", {"IMAGE": c})) for c in chunks
    ])
    assert [len(o["COUNT"]) for o in outs] == [6] * 5
    assert batching.stats.calls >= 2
    assert batching.stats.rows == 30
    assert batching.stats.rows_per_call <= 16


class _RowModel:
    """A model server in this process: doubles each row; rejects rows holding a negative value.

    Stands in for Triton where the test needs a rejection that only some requests cause.
    """

    def __init__(self) -> None:
        self.calls: list[int] = []

    def model_config(self, model: str, version: str) -> dict[str, Any]:
        return {"max_batch_size": 8}

    def infer(self, model: str, version: str,
              inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs["X"]
        self.calls.append(len(x))
        if (x < 0).any():
            raise InferenceRejected("negative input")
        return {"Y": x * 2}


def test_a_rejected_request_fails_alone() -> None:
    server = _RowModel()
    client = BatchingClient(lambda: server, max_wait_s=0.05, max_in_flight=1)
    try:
        inputs = [np.full((2, 3), i, np.int64) for i in range(3)] + [np.full((2, 3), -1)]

        def call(x: np.ndarray) -> dict[str, np.ndarray]:
            try:
                return client.infer("m", "1", {"X": x})
            except InferenceRejected as exc:
                return {"error": exc}  # type: ignore[dict-item]

        results = _concurrently([(lambda x=x: call(x)) for x in inputs])
        for x, out in zip(inputs[:3], results[:3], strict=True):
            np.testing.assert_array_equal(out["Y"], x * 2)
        assert isinstance(results[3]["error"], InferenceRejected)
        assert server.calls[0] == 8  # all four merged first, then each alone
    finally:
        client.close()


CAPPED_CONFIG = """name: "capped"
backend: "python"
max_batch_size: 16
input [ { name: "X", data_type: TYPE_INT64, dims: [ 3 ] } ]
output [ { name: "Y", data_type: TYPE_INT64, dims: [ 3 ] } ]
instance_group [ { kind: KIND_CPU, count: 1 } ]
"""

CAPPED_MODEL = '''
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """Doubles its rows; a call of more than 4 rows fails as ONNX Runtime does without memory."""

    def execute(self, requests):
        responses = []
        for request in requests:
            x = np.from_dlpack(pb_utils.get_input_tensor_by_name(request, "X"))
            if len(x) > 4:
                raise RuntimeError(
                    "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory "
                    f"for requested buffer of size {len(x) << 20}"
                )
            y = pb_utils.Tensor.from_dlpack("Y", np.ascontiguousarray(x * 2))
            responses.append(pb_utils.InferenceResponse(output_tensors=[y]))
        return responses
'''


@pytest.fixture(scope="module")
def capped_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real server with one model that runs out of memory above 4 rows per call."""
    from trendflow.triton.server import free_port, start_server, stop_server

    repo = tmp_path_factory.mktemp("capped-repo")
    (repo / "capped" / "1").mkdir(parents=True)
    (repo / "capped" / "config.pbtxt").write_text(CAPPED_CONFIG)
    (repo / "capped" / "1" / "model.py").write_text(CAPPED_MODEL)
    work = tmp_path_factory.mktemp("capped-work")
    info = start_server(repo, work, http_port=free_port(), grpc_port=free_port(),
                        metrics_port=free_port())
    try:
        yield info.grpc_url
    finally:
        stop_server(work)


def test_out_of_memory_is_its_own_error_and_a_merged_batch_shrinks_back(
    capped_server: str,
) -> None:
    from trendflow.errors import OutOfMemory

    alone = TritonClient(capped_server)
    with pytest.raises(OutOfMemory) as caught:  # not "rejected": the scheduler halves, retries
        alone.infer("capped", "1", {"X": np.ones((6, 3), np.int64)})
    assert caught.value.code == "out_of_memory" and caught.value.retryable
    alone.close()

    client = BatchingClient(lambda: TritonClient(capped_server), max_wait_s=0.2)
    try:
        xs = [np.full((2, 3), i, np.int64) for i in range(4)]  # 8 rows merged: too many
        outs = _concurrently([(lambda x=x: client.infer("capped", "1", {"X": x})) for x in xs])
        for x, out in zip(xs, outs, strict=True):
            np.testing.assert_array_equal(out["Y"], x * 2)
        assert client.stats.oom_splits >= 1
        with pytest.raises(OutOfMemory):  # a lone request too big still reaches its caller
            client.infer("capped", "1", {"X": np.ones((5, 3), np.int64)})
    finally:
        client.close()
