"""Throughput of every served model: through Triton vs the same model in-process, same run.

    .venv/bin/python benchmarks/bench_triton.py                  # all models, print the table
    .venv/bin/python benchmarks/bench_triton.py --model ocr --repeats 5

What it does, all on this machine:

1. builds (or reuses) the weights in ``.cache/triton/<build key>/triton_repo`` exactly as the
   tests do, and starts the real ``tritonserver`` from the wheel on it (loopback, free ports);
2. per model, a realistic workload cut into requests of a fixed batch size: titles for
   ``text_embedder``, 320×568 analysis frames with a real face (``skimage`` astronaut) for
   ``face_detector``, 64×64 face crops for ``face_emotion``, frames with rendered text for
   ``ocr``, 20 s of 16 kHz speech (espeak-ng) for ``vad`` and ``asr``;
3. **in-process baseline**: the model's own ``triton_repo/<model>/1/model.py`` loaded in this
   process with a minimal stand-in for ``triton_python_backend_utils`` (requests hold numpy
   arrays; DLPack in and out as in the server), so both sides run the same ONNX Runtime session
   with the same preprocessing, threads and batches — the only difference is serving;
4. **Triton**: the same requests through ``TritonClient.infer`` over gRPC, one at a time;
5. each side gets one warm-up pass, then ``--repeats`` timed passes, alternating sides; the
   median pass is reported.

Columns: items per pass; seconds per item in-process and through Triton (the latter is the
per-frame / per-item cost used for ``component_pricing``); ``ratio`` = Triton throughput /
in-process throughput (target ≥ 0.8). The machine is shared, so compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
import types
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.triton import built_repository  # noqa: E402
from trendflow.triton.client import TritonClient, encode_texts  # noqa: E402
from trendflow.triton.server import free_port, start_server, stop_server  # noqa: E402

# --- in-process stand-in for the python backend's utilities ----------------------------------


class _Tensor:
    def __init__(self, name: str, array: np.ndarray) -> None:
        self.name, self.array = name, array

    @classmethod
    def from_dlpack(cls, name: str, capsule: Any) -> _Tensor:
        return cls(name, np.from_dlpack(capsule))


class _Response:
    def __init__(self, output_tensors: list[_Tensor] | None = None, error: Any = None) -> None:
        self.outputs = {t.name: t.array for t in output_tensors or []}
        self.error = error


class _Request:
    def __init__(self, inputs: dict[str, np.ndarray]) -> None:
        self.inputs = inputs


def _pb_utils() -> types.ModuleType:
    mod = types.ModuleType("triton_python_backend_utils")
    mod.Tensor = _Tensor  # type: ignore[attr-defined]
    mod.InferenceResponse = _Response  # type: ignore[attr-defined]
    mod.InferenceRequest = _Request  # type: ignore[attr-defined]
    mod.TritonError = RuntimeError  # type: ignore[attr-defined]
    mod.get_input_tensor_by_name = lambda r, n: r.inputs[n]  # type: ignore[attr-defined]
    return mod


def _config_json(model_dir: Path) -> str:
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    config = text_format.Parse((model_dir / "config.pbtxt").read_text(),
                               model_config_pb2.ModelConfig())
    return json_format.MessageToJson(config, preserving_proto_field_name=True)


def load_in_process(repo: Path, name: str) -> Any:
    """``<repo>/<name>/1/model.py``'s TritonPythonModel, initialised as Triton would on CPU."""
    sys.modules["triton_python_backend_utils"] = _pb_utils()
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", repo / name / "1" / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.TritonPythonModel()
    model.initialize({
        "model_config": _config_json(repo / name),
        "model_repository": str(repo / name),
        "model_version": "1",
        "model_instance_kind": "CPU",
        "model_instance_device_id": "0",
    })
    return model


# --- workloads -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Workload:
    model: str
    input_name: str
    requests: list[np.ndarray]  # each one request (batch first)
    unit: str

    @property
    def items(self) -> int:
        return sum(len(r) for r in self.requests)


def _split(rows: np.ndarray, batch: int) -> list[np.ndarray]:
    return [rows[i : i + batch] for i in range(0, len(rows), batch)]


def _frames_with_face(n: int) -> np.ndarray:
    import cv2
    from skimage import data

    face = cv2.resize(data.astronaut(), (320, 320))
    frames = np.full((n, 320, 568, 3), 40, np.uint8)
    for i in range(n):
        x = (7 * i) % 248
        frames[i, :, x : x + 320] = face
    return frames


def _frames_with_text(n: int) -> np.ndarray:
    import cv2

    frames = np.full((n, 320, 568, 3), 250, np.uint8)
    for i in range(n):
        cv2.putText(frames[i], f"EPISODE {i + 1}", (30, 120), cv2.FONT_HERSHEY_SIMPLEX, 2.0,
                    (0, 0, 0), 4)
        cv2.putText(frames[i], "subscribe for more", (30, 220), cv2.FONT_HERSHEY_SIMPLEX, 1.4,
                    (20, 20, 200), 3)
    return frames


def _speech(seconds: float) -> np.ndarray:
    """espeak-ng sentences repeated with pauses to ``seconds`` of 16 kHz mono float32."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav),
                        "welcome back to the channel. today we test the speed of our models."],
                       check=True, capture_output=True)
        with wave.open(str(wav)) as w:
            rate = w.getframerate()
            voice = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32)
    voice = np.interp(np.arange(0, len(voice), rate / 16000), np.arange(len(voice)),
                      voice / 32768.0).astype(np.float32)
    piece = np.concatenate([voice, np.zeros(8000, np.float32)])
    reps = int(np.ceil(seconds * 16000 / len(piece)))
    return np.tile(piece, reps)[: round(seconds * 16000)]


def workloads(selected: set[str]) -> list[Workload]:
    import cv2
    from skimage import data

    out: list[Workload] = []
    if "text_embedder" in selected:
        titles = [f"How I built a cabin in {i} days — full tour and costs, part {i % 7}"
                  for i in range(64)]
        out.append(Workload("text_embedder", "TEXT",
                            [encode_texts(titles[i : i + 16]) for i in range(0, 64, 16)], "text"))
    if "face_detector" in selected:
        out.append(Workload("face_detector", "IMAGE", _split(_frames_with_face(16), 8), "frame"))
    if "face_emotion" in selected:
        crop = cv2.resize(cv2.cvtColor(data.astronaut()[72:172, 180:270], cv2.COLOR_RGB2GRAY),
                          (64, 64))
        rng = np.random.default_rng(0)
        crops = np.clip(crop[None] + rng.normal(0, 6, (256, 64, 64)), 0, 255).astype(np.uint8)
        out.append(Workload("face_emotion", "FACE", _split(crops, 64), "face"))
    if "ocr" in selected:
        out.append(Workload("ocr", "IMAGE", _split(_frames_with_text(8), 4), "frame"))
    if selected & {"vad", "asr"}:
        audio = _speech(20.0)[None]
        for name in ("vad", "asr"):
            if name in selected:
                out.append(Workload(name, "AUDIO", [audio], "audio s"))
    return out


# --- timing ----------------------------------------------------------------------------------


def _timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(w: Workload, repo: Path, client: TritonClient, repeats: int) -> dict[str, float]:
    local = load_in_process(repo, w.model)

    def in_process() -> None:
        for batch in w.requests:
            (resp,) = local.execute([_Request({w.input_name: batch})])
            if resp.error is not None:
                raise RuntimeError(resp.error)

    def through_triton() -> None:
        for batch in w.requests:
            client.infer(w.model, "1", {w.input_name: batch})

    in_process()
    through_triton()
    local_s, triton_s = [], []
    for _ in range(repeats):
        local_s.append(_timed(in_process))
        triton_s.append(_timed(through_triton))
    items = w.items if w.unit != "audio s" else sum(r.shape[1] for r in w.requests) / 16000
    lm, tm = statistics.median(local_s), statistics.median(triton_s)
    return {"items": items, "local_s_per_item": lm / items, "triton_s_per_item": tm / items,
            "ratio": lm / tm}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    names = ("text_embedder", "face_detector", "face_emotion", "ocr", "vad", "asr")
    parser.add_argument("--model", action="append", choices=names, help="only this (repeatable)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    selected = set(args.model or names)

    repo = built_repository()
    work = Path(tempfile.mkdtemp(prefix="trendflow-bench-triton-"))
    info = start_server(repo, work, http_port=free_port(), grpc_port=free_port(),
                        metrics_port=free_port())
    client = TritonClient(info.grpc_url)
    rows: dict[str, dict[str, float]] = {}
    try:
        for w in workloads(selected):
            rows[w.model] = bench(w, repo, client, args.repeats) | {"unit": w.unit}  # type: ignore[dict-item]
    finally:
        client.close()
        stop_server(work)

    print(f"\n{'model':<14} {'items':>7} {'unit':<8} {'in-process s/item':>18} "
          f"{'Triton s/item':>14} {'ratio':>6}")
    for name, r in rows.items():
        print(f"{name:<14} {r['items']:>7g} {r['unit']:<8} {r['local_s_per_item']:>18.5f} "
              f"{r['triton_s_per_item']:>14.5f} {r['ratio']:>6.2f}")
    worst = min(r["ratio"] for r in rows.values())
    print(f"\nworst ratio {worst:.2f} (target >= 0.8); median of {args.repeats} passes, "
          "requests sent one at a time over gRPC on loopback")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
