"""text_embedder: all-MiniLM-L6-v2 on ONNX Runtime; tokenization, mean pooling and L2 norm here."""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils
from tokenizers import Tokenizer


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
        params = {k: v["string_value"] for k, v in self.config.get("parameters", {}).items()}
        self.session = make_session(weights / "model.onnx", args, self.config)
        self.tokenizer = Tokenizer.from_file(str(weights / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=int(params.get("max_tokens", "256")))
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.input_names = {i.name for i in self.session.get_inputs()}

    def execute(self, requests: list) -> list:
        texts: list[str] = []
        counts: list[int] = []
        errors: dict[int, str] = {}
        for i, request in enumerate(requests):
            raw = in_array(request, "TEXT")
            try:
                batch = [row.tobytes().rstrip(b"\0").decode("utf-8") for row in raw]
            except UnicodeDecodeError as exc:
                errors[i] = f"TEXT is not valid UTF-8: {exc}"
                batch = []
            texts.extend(batch)
            counts.append(len(batch))
        embeddings = self._embed(texts) if texts else np.zeros((0, 384), np.float32)
        responses = []
        start = 0
        for i, n in enumerate(counts):
            if i in errors:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(errors[i])))
                continue
            out = out_tensor("EMBEDDING", embeddings[start : start + n])
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
            start += n
        return responses

    def _embed(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(["last_hidden_state"], feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norm, 1e-12, None)).astype(np.float32)
