"""vad: Silero VAD on ONNX Runtime, run window by window with its state kept per clip."""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

WINDOW = 512  # samples at 16 kHz
CONTEXT = 64



def in_array(request: "pb_utils.InferenceRequest", name: str) -> np.ndarray:
    """Input via DLPack: this stub's ``as_numpy`` misreads buffers under numpy 2 (see docs)."""
    return np.from_dlpack(pb_utils.get_input_tensor_by_name(request, name))


def out_tensor(name: str, array: np.ndarray) -> "pb_utils.Tensor":
    """Output via DLPack: this stub's numpy path mis-sizes arrays under numpy 2 (see docs)."""
    return pb_utils.Tensor.from_dlpack(name, np.ascontiguousarray(array))


def json_rows(items: list) -> np.ndarray:
    """One JSON document per batch row as UTF-8 bytes, space-padded: uint8 [n, L]."""
    encoded = [json.dumps(item, ensure_ascii=False).encode("utf-8") for item in items]
    width = max([len(e) for e in encoded] + [1])
    out = np.full((len(encoded), width), ord(" "), np.uint8)
    for i, e in enumerate(encoded):
        out[i, : len(e)] = np.frombuffer(e, np.uint8)
    return out

def make_session(path: Path, args: dict, config: dict) -> ort.InferenceSession:
    """ORT session on the instance's device: CUDA for KIND_GPU instances, CPU otherwise."""
    params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(params.get("intra_op_threads", "1"))
    opts.inter_op_num_threads = 1
    if args["model_instance_kind"] == "GPU":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeError("GPU instance requested but onnxruntime has no CUDA provider")
        device = int(args["model_instance_device_id"])
        providers = [("CUDAExecutionProvider", {"device_id": device})]
    else:
        providers = ["CPUExecutionProvider"]
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers)


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        self.config = json.loads(args["model_config"])
        weights = Path(args["model_repository"]) / args["model_version"] / "weights"
        self.session = make_session(weights / "silero_vad.onnx", args, self.config)

    def execute(self, requests: list) -> list:
        # Requests are run one by one: clips differ in length, and each clip owns its state.
        responses = []
        for request in requests:
            audio = in_array(request, "AUDIO")
            probs = self.clip_probs(audio.astype(np.float32))
            responses.append(
                pb_utils.InferenceResponse(output_tensors=[out_tensor("PROBS", probs)])
            )
        return responses

    def clip_probs(self, audio: np.ndarray) -> np.ndarray:
        """[B, samples] → [B, windows]; a trailing partial window is zero-padded."""
        b, n = audio.shape
        windows = (n + WINDOW - 1) // WINDOW
        padded = np.zeros((b, windows * WINDOW), np.float32)
        padded[:, :n] = audio
        state = np.zeros((2, b, 128), np.float32)
        context = np.zeros((b, CONTEXT), np.float32)
        sr = np.array(16000, dtype=np.int64)
        out = np.zeros((b, windows), np.float32)
        for w in range(windows):
            x = np.concatenate([context, padded[:, w * WINDOW : (w + 1) * WINDOW]], axis=1)
            prob, state = self.session.run(None, {"input": x, "state": state, "sr": sr})
            out[:, w] = prob.reshape(b)
            context = x[:, -CONTEXT:]
        return out
