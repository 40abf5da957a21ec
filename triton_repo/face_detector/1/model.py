"""face_detector: the MTCNN cascade (P-Net → R-Net → O-Net) on ONNX Runtime, NMS in numpy.

Follows facenet-pytorch's ``detect_face`` step for step (same scales, thresholds, box
regression, squaring and NMS), so boxes match the source package's detector.
"""

import json
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


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


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, method: str = "union"):
    """Greedy NMS (MTCNN's convention: +1 pixel areas; "min" divides by the smaller area)."""
    if boxes.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores, kind="stable")
    keep = []
    while order.size:
        i = order[-1]
        keep.append(i)
        rest = order[:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if method == "min" else area[i] + area[rest] - inter
        order = rest[inter / denom <= threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(boxes, scores, groups, threshold, method="union"):
    """NMS independently per group (image): each image's boxes alone, in the image's own
    coordinates, so an image's detections never depend on the other images of its batch
    (requests merged into one batch give every image the result it gets alone)."""
    if boxes.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    keeps = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        keeps.append(idx[nms(boxes[idx], scores[idx], threshold, method)])
    return np.concatenate(keeps)


def rerec(boxes: np.ndarray) -> np.ndarray:
    """Square the boxes around their centres."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def bbreg(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, 0] = boxes[:, 0] + reg[:, 0] * w
    out[:, 1] = boxes[:, 1] + reg[:, 1] * h
    out[:, 2] = boxes[:, 2] + reg[:, 2] * w
    out[:, 3] = boxes[:, 3] + reg[:, 3] * h
    return out


def crops(images: np.ndarray, boxes: np.ndarray, inds: np.ndarray, size: int) -> np.ndarray:
    """Crop (1-based inclusive MTCNN boxes, clipped) and resize to ``size``, normalised NCHW."""
    h, w = images.shape[1:3]
    b = np.trunc(boxes[:, :4]).astype(np.int64)
    x = np.maximum(b[:, 0], 1)
    y = np.maximum(b[:, 1], 1)
    ex = np.minimum(b[:, 2], w)
    ey = np.minimum(b[:, 3], h)
    out = np.zeros((len(b), 3, size, size), np.float32)
    valid = np.zeros(len(b), bool)
    for k in range(len(b)):
        if ey[k] > y[k] - 1 and ex[k] > x[k] - 1:
            patch = images[inds[k], y[k] - 1 : ey[k], x[k] - 1 : ex[k]]
            if patch.size == 0:
                continue
            resized = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
            out[k] = (resized.astype(np.float32).transpose(2, 0, 1) - 127.5) * 0.0078125
            valid[k] = True
    return out, valid


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        self.config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in self.config.get("parameters", {}).items()}
        weights = Path(args["model_repository"]) / args["model_version"] / "weights"
        self.pnet = make_session(weights / "pnet.onnx", args, self.config)
        self.rnet = make_session(weights / "rnet.onnx", args, self.config)
        self.onet = make_session(weights / "onet.onnx", args, self.config)
        self.min_size = float(params.get("min_face_px", "20"))
        self.thresholds = [float(t) for t in params.get("thresholds", "0.6,0.7,0.7").split(",")]
        self.factor = float(params.get("scale_factor", "0.709"))

    def execute(self, requests: list) -> list:
        responses = []
        for request in requests:
            images = in_array(request, "IMAGE")
            if images.ndim != 4 or images.shape[-1] != 3 or min(images.shape[1:3]) < 12:
                msg = f"IMAGE must be [N, H>=12, W>=12, 3] uint8, got {list(images.shape)}"
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(msg)))
                continue
            per_image = self.detect(images)
            # At least one row: zero-size outputs confuse some client decoders; COUNT is the truth.
            most = max([len(b) for b, _, _ in per_image] + [1])
            n = len(per_image)
            boxes = np.zeros((n, most, 4), np.float32)
            scores = np.zeros((n, most), np.float32)
            marks = np.zeros((n, most, 5, 2), np.float32)
            count = np.zeros((n, 1), np.int32)
            for i, (b, s, lm) in enumerate(per_image):
                boxes[i, : len(b)] = b
                scores[i, : len(b)] = s
                marks[i, : len(b)] = lm
                count[i, 0] = len(b)
            outs = [
                out_tensor("BOXES", boxes),
                out_tensor("SCORES", scores),
                out_tensor("LANDMARKS", marks),
                out_tensor("COUNT", count),
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=outs))
        return responses

    def detect(self, images: np.ndarray) -> list:
        n, h, w = images.shape[:3]
        m = 12.0 / self.min_size
        minl = min(h, w) * m
        scales = []
        scale = m
        while minl >= 12:
            scales.append(scale)
            scale *= self.factor
            minl *= self.factor
        all_boxes, all_inds = [], []
        for scale in scales:
            hs, ws = int(h * scale + 1), int(w * scale + 1)
            batch = np.stack(
                [cv2.resize(img, (ws, hs), interpolation=cv2.INTER_AREA) for img in images]
            ).astype(np.float32)
            batch = (batch.transpose(0, 3, 1, 2) - 127.5) * 0.0078125
            reg, prob = self.pnet.run(None, {"input": batch})
            mask = prob[:, 1] >= self.thresholds[0]
            img_i, yy, xx = np.nonzero(mask)
            if img_i.size == 0:
                continue
            score = prob[:, 1][mask]
            r = reg.transpose(0, 2, 3, 1)[mask]
            q1 = np.floor((2 * np.stack([xx, yy], 1) + 1) / scale)
            q2 = np.floor((2 * np.stack([xx, yy], 1) + 12) / scale)
            cand = np.concatenate([q1, q2, score[:, None], r], axis=1).astype(np.float32)
            keep = batched_nms(cand[:, :4], cand[:, 4], img_i, 0.5)
            all_boxes.append(cand[keep])
            all_inds.append(img_i[keep])
        if not all_boxes:
            return [(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))] * n
        boxes = np.concatenate(all_boxes)
        inds = np.concatenate(all_inds)
        keep = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
        boxes, inds = boxes[keep], inds[keep]
        regw = boxes[:, 2] - boxes[:, 0]
        regh = boxes[:, 3] - boxes[:, 1]
        boxes = np.stack(
            [
                boxes[:, 0] + boxes[:, 5] * regw,
                boxes[:, 1] + boxes[:, 6] * regh,
                boxes[:, 2] + boxes[:, 7] * regw,
                boxes[:, 3] + boxes[:, 8] * regh,
                boxes[:, 4],
            ],
            axis=1,
        )
        boxes = rerec(boxes)
        # R-Net
        data, valid = crops(images, boxes, inds, 24)
        boxes, inds, data = boxes[valid], inds[valid], data[valid]
        if len(boxes):
            reg, prob = self.rnet.run(None, {"input": data})
            ok = prob[:, 1] > self.thresholds[1]
            boxes = np.concatenate([boxes[ok, :4], prob[ok, 1:2]], axis=1)
            inds, reg = inds[ok], reg[ok]
            keep = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
            boxes, inds, reg = boxes[keep], inds[keep], reg[keep]
            boxes = rerec(bbreg(boxes, reg))
        points = np.zeros((0, 5, 2), np.float32)
        # O-Net
        if len(boxes):
            data, valid = crops(images, boxes, inds, 48)
            boxes, inds, data = boxes[valid], inds[valid], data[valid]
        if len(boxes):
            reg, marks, prob = self.onet.run(None, {"input": data})
            ok = prob[:, 1] > self.thresholds[2]
            boxes = np.concatenate([boxes[ok, :4], prob[ok, 1:2]], axis=1)
            inds, reg, marks = inds[ok], reg[ok], marks[ok]
            wi = boxes[:, 2] - boxes[:, 0] + 1
            hi = boxes[:, 3] - boxes[:, 1] + 1
            px = wi[:, None] * marks[:, :5] + boxes[:, 0:1] - 1
            py = hi[:, None] * marks[:, 5:10] + boxes[:, 1:2] - 1
            points = np.stack([px, py], axis=2)
            boxes = bbreg(boxes, reg)
            keep = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7, "min")
            boxes, inds, points = boxes[keep], inds[keep], points[keep]
        result = []
        for i in range(n):
            sel = inds == i
            order = np.argsort(-boxes[sel, 4], kind="stable") if sel.any() else np.zeros(0, int)
            result.append((boxes[sel][order, :4], boxes[sel][order, 4], points[sel][order]))
        return result
