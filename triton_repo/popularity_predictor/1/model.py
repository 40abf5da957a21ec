"""popularity_predictor: quantile boosters on ONNX Runtime, tree-SHAP contributions by LightGBM.

FEATURES fp32 [n, T] (the full Tier-0 row in the card's ``tier0_features`` order, NaN =
unknown; the model reads its ``features`` columns of it) → QUANTILES fp32 [n, 2, 3] (log1p
views/likes × p10/p50/p90: raw + the card's interval offsets, sorted per row) and CONTRIB fp32
[n, 2, T + 1] (p50 boosters' pred_contrib per Tier-0 column, NaN for columns the model does not
read; last column the bias). The same
arithmetic as ``trendflow.forecast.train.finish_quantiles`` (this folder must load without the
trendflow package, see docs/triton.md).
"""

import json
from pathlib import Path

import lightgbm
import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

TARGETS = ("views", "likes")
QUANTILES = (10, 50, 90)


def in_array(request: "pb_utils.InferenceRequest", name: str) -> np.ndarray:
    """Input via DLPack: this stub's ``as_numpy`` misreads buffers under numpy 2 (see docs)."""
    return np.from_dlpack(pb_utils.get_input_tensor_by_name(request, name))


def out_tensor(name: str, array: np.ndarray) -> "pb_utils.Tensor":
    """Output via DLPack: this stub's numpy path mis-sizes arrays under numpy 2 (see docs)."""
    return pb_utils.Tensor.from_dlpack(name, np.ascontiguousarray(array))


def make_session(path: Path, config: dict) -> ort.InferenceSession:
    """ORT session on CPU (tree ensembles have no CUDA kernels; see configs/gpu.pbtxt)."""
    params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(params.get("intra_op_threads", "1"))
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        self.config = json.loads(args["model_config"])
        weights = Path(args["model_repository"]) / args["model_version"] / "weights"
        card = json.loads((weights / "MODEL_CARD.json").read_text())
        tier0 = card["tier0_features"]
        self.n_features = len(tier0)
        self.columns = np.array([tier0.index(f) for f in card["features"]], np.int64)
        self.offsets = np.array(
            [[-card["interval_offsets"][t], 0.0, card["interval_offsets"][t]] for t in TARGETS],
            np.float32,
        )
        self.sessions = [
            [make_session(weights / f"{t}_p{q}.onnx", self.config) for q in QUANTILES]
            for t in TARGETS
        ]
        self.p50 = [lightgbm.Booster(model_file=str(weights / f"{t}_p50.txt")) for t in TARGETS]

    def execute(self, requests: list) -> list:
        responses = []
        for request in requests:
            x = np.ascontiguousarray(in_array(request, "FEATURES"), np.float32)
            if x.ndim != 2 or x.shape[1] != self.n_features:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(
                    f"FEATURES must be [n, {self.n_features}], got {list(x.shape)}"
                )))
                continue
            cols = np.ascontiguousarray(x[:, self.columns])
            raw = np.zeros((len(x), 2, 3), np.float32)
            for ti, sessions in enumerate(self.sessions):
                for qi, session in enumerate(sessions):
                    raw[:, ti, qi] = session.run(None, {"FEATURES": cols})[0].reshape(-1)
            quantiles = np.sort(raw + self.offsets, axis=-1).astype(np.float32)
            contrib = np.full((len(x), 2, self.n_features + 1), np.nan, np.float32)
            for ti, booster in enumerate(self.p50):
                shap = booster.predict(cols, pred_contrib=True, num_threads=1)
                contrib[:, ti, self.columns] = shap[:, :-1]
                contrib[:, ti, -1] = shap[:, -1]
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                out_tensor("QUANTILES", quantiles), out_tensor("CONTRIB", contrib),
            ]))
        return responses
