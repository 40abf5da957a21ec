"""asr: Whisper tiny.en through faster-whisper (CTranslate2); English only."""

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils
from faster_whisper import WhisperModel


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

class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        self.config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in self.config.get("parameters", {}).items()}
        weights = Path(args["model_repository"]) / args["model_version"] / "weights"
        gpu = args["model_instance_kind"] == "GPU"
        self.model = WhisperModel(
            str(weights),
            device="cuda" if gpu else "cpu",
            device_index=int(args["model_instance_device_id"]) if gpu else 0,
            compute_type="float16" if gpu else params.get("compute_type", "int8"),
            cpu_threads=int(params.get("cpu_threads", "1")),
            local_files_only=True,
        )
        self.beam_size = int(params.get("beam_size", "1"))

    def execute(self, requests: list) -> list:
        responses = []
        for request in requests:
            clips = in_array(request, "AUDIO")
            results = [self.transcribe(c.astype(np.float32)) for c in clips]
            docs = [{"text": t, "language": lang, "segments": segs} for t, lang, segs in results]
            outs = [out_tensor("RESULT", json_rows(docs))]
            responses.append(pb_utils.InferenceResponse(output_tensors=outs))
        return responses

    def transcribe(self, audio: np.ndarray) -> tuple:
        segments, info = self.model.transcribe(
            audio,
            language="en",
            beam_size=self.beam_size,
            vad_filter=False,
            condition_on_previous_text=False,
        )
        segs = [[round(s.start, 3), round(s.end, 3), s.text.strip()] for s in segments]
        return " ".join(t for _, _, t in segs).strip(), info.language, segs
