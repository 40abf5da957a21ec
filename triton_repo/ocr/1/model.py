"""ocr: RapidOCR (PP-OCRv4 det/cls/rec ONNX on ONNX Runtime) over each frame."""

import json
from pathlib import Path

import cv2
import numpy as np
import triton_python_backend_utils as pb_utils
from rapidocr_onnxruntime import RapidOCR


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
        self.engine = RapidOCR(
            det_model_path=str(weights / "det.onnx"),
            cls_model_path=str(weights / "cls.onnx"),
            rec_model_path=str(weights / "rec.onnx"),
            det_use_cuda=gpu,
            cls_use_cuda=gpu,
            rec_use_cuda=gpu,
            intra_op_num_threads=int(params.get("intra_op_threads", "1")),
            inter_op_num_threads=1,
            det_limit_type=params.get("det_limit_type", "max"),
            det_limit_side_len=int(params.get("det_limit_side_len", "960")),
            text_score=float(params.get("text_score", "0.5")),
        )

    def execute(self, requests: list) -> list:
        responses = []
        for request in requests:
            images = in_array(request, "IMAGE")
            per_image = []
            for img in images:
                result, _ = self.engine(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
                per_image.append(result or [])
            most = max([len(r) for r in per_image] + [1])  # COUNT says how many rows are real
            n = len(per_image)
            boxes = np.zeros((n, most, 4, 2), np.float32)
            scores = np.zeros((n, most), np.float32)
            texts = [[line[1] for line in lines] for lines in per_image]
            count = np.zeros((n, 1), np.int32)
            for i, lines in enumerate(per_image):
                count[i, 0] = len(lines)
                for j, (box, _text, score) in enumerate(lines):
                    boxes[i, j] = np.asarray(box, np.float32)
                    scores[i, j] = float(score)
            outs = [
                out_tensor("BOXES", boxes),
                out_tensor("SCORES", scores),
                out_tensor("TEXTS", json_rows(texts)),
                out_tensor("COUNT", count),
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=outs))
        return responses
