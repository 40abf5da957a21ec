"""Generic Triton python-backend model for operator-supplied ONNX image-embedding models.

``trendflow models add-image-model`` copies this file to ``<repo>/<name>/<version>/model.py``
next to ``weights/model.onnx`` and ``weights/preprocess.json``. The served model takes
``IMAGE`` uint8 ``[n, H, W, 3]`` RGB frames (any size) and returns ``EMBEDDING`` fp32
``[n, D]``; everything model-specific (input size, resize, crop, normalisation, layout, output
normalisation) is read from ``preprocess.json``, so a new model needs no code.

This module must stay self-contained (numpy, OpenCV, ONNX Runtime only): production Triton
containers run it without the ``trendflow`` package. ``triton_python_backend_utils`` is
imported inside the class, so :func:`preprocess` and :func:`embed` can also be imported
in-process (the benchmark and tests compare the served path with them).

``preprocess.json`` keys (validated by ``trendflow.triton.byo.ImagePreprocess``)::

    size            [height, width] the network's input
    resize          "shorter_side_center_crop" (scale the shorter side to fit, crop the
                    centre: CLIP/ImageNet style) | "stretch" (resize to size, aspect ignored)
    interpolation   "bilinear" | "bicubic" | "area" | "nearest"   (OpenCV)
    channel_order   "RGB" | "BGR"
    scale           multiplier applied to 0-255 pixel values first (e.g. 1/255)
    mean, std       per channel, in channel_order, applied after scale: (x*scale - mean)/std
    layout          "NCHW" | "NHWC"
    input_name      ONNX input to feed;  output_name: ONNX output to read ([n, D])
    l2_normalize    true → each embedding is divided by its L2 norm
"""

import json
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

_INTERPOLATION = {
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "nearest": cv2.INTER_NEAREST,
}


def _resize_one(image: np.ndarray, spec: dict) -> np.ndarray:
    out_h, out_w = spec["size"]
    flag = _INTERPOLATION[spec["interpolation"]]
    if spec["resize"] == "stretch":
        return cv2.resize(image, (out_w, out_h), interpolation=flag)
    h, w = image.shape[:2]
    scale = max(out_h / h, out_w / w)
    new_h, new_w = max(out_h, round(h * scale)), max(out_w, round(w * scale))
    resized = cv2.resize(image, (new_w, new_h), interpolation=flag)
    top, left = (new_h - out_h) // 2, (new_w - out_w) // 2
    return resized[top : top + out_h, left : left + out_w]


def preprocess(images: np.ndarray, spec: dict) -> np.ndarray:
    """uint8 RGB ``[n, H, W, 3]`` → the network's float32 input per ``spec``."""
    batch = np.stack([_resize_one(np.ascontiguousarray(img), spec) for img in images])
    if spec["channel_order"] == "BGR":
        batch = batch[..., ::-1]
    x: np.ndarray = batch.astype(np.float32) * np.float32(spec["scale"])
    x = (x - np.asarray(spec["mean"], np.float32)) / np.asarray(spec["std"], np.float32)
    if spec["layout"] == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32)


def embed(session: ort.InferenceSession, images: np.ndarray, spec: dict) -> np.ndarray:
    """Embeddings ``[n, D]`` of uint8 RGB ``images`` — exactly what the served model answers."""
    out = session.run([spec["output_name"]], {spec["input_name"]: preprocess(images, spec)})[0]
    out = np.asarray(out, np.float32).reshape(len(images), -1)
    if spec["l2_normalize"]:
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out = out / np.maximum(norms, np.float32(1e-12))
    return out.astype(np.float32)


def make_session(path: Path, args: dict, config: dict) -> ort.InferenceSession:
    """ORT session on the instance's device: CUDA for KIND_GPU instances, CPU otherwise."""
    params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(params.get("intra_op_threads", "1"))
    opts.inter_op_num_threads = 1
    providers: list[str | tuple[str, dict[str, int]]]
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
        self.spec = json.loads((weights / "preprocess.json").read_text())
        self.session = make_session(weights / "model.onnx", args, self.config)

    def execute(self, requests: list) -> list:
        import triton_python_backend_utils as pb_utils

        responses = []
        for request in requests:
            # DLPack both ways: this stub's numpy paths break under numpy 2 (docs/triton.md).
            images = np.from_dlpack(pb_utils.get_input_tensor_by_name(request, "IMAGE"))
            try:
                emb = embed(self.session, images, self.spec)
            except Exception as exc:  # noqa: BLE001 - reported on this request's response
                responses.append(pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(f"image embedding failed: {exc}")
                ))
                continue
            out = pb_utils.Tensor.from_dlpack("EMBEDDING", np.ascontiguousarray(emb))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
        return responses
