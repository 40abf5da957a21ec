"""Export a trained forecast to ONNX, beside its model card, as a Triton model version.

``<out>/`` (a ``triton_repo/popularity_predictor/<v>/weights/`` folder, or any folder) holds:

- ``views_p10.onnx`` … ``likes_p90.onnx``: the six boosters (onnxmltools), input ``FEATURES``
  float32 ``[n, F]``, output ``variable`` ``[n, 1]`` on the log1p scale;
- ``views_p50.txt``, ``likes_p50.txt``: the p50 boosters in LightGBM's text format, for the
  per-feature contributions (tree SHAP) the served model returns with the forecast;
- ``MODEL_CARD.json``: what it was trained on (data file sha256, rows, channels), the feature
  list in input order, the interval offsets, the held-out metrics with their baselines, the
  trainer's settings, the package versions and the date.

:func:`verify_export` checks the ONNX graphs against the boosters on the training rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from trendflow.forecast.tier0 import TIER0_FEATURES
from trendflow.forecast.train import QUANTILES, TARGETS, QuantileModel, TrainConfig

CARD_FILE = "MODEL_CARD.json"
CARD_FORMAT = 1


def onnx_name(target: str, q: float) -> str:
    return f"{target}_p{round(q * 100)}.onnx"


def export_model(
    model: QuantileModel, out: Path, *, card: dict[str, Any], cfg: TrainConfig
) -> dict[str, Any]:
    """Write the ONNX graphs, the p50 booster texts and the model card into ``out``."""
    import lightgbm
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    out.mkdir(parents=True, exist_ok=True)
    n = len(model.feature_names)
    for target in TARGETS:
        for q, booster in zip(QUANTILES, model.boosters[target], strict=True):
            onx = onnxmltools.convert_lightgbm(
                booster, initial_types=[("FEATURES", FloatTensorType([None, n]))],
                target_opset=15, zipmap=False,
            )
            onx.graph.name = onnx_name(target, q).removesuffix(".onnx")  # was a random uuid
            (out / onnx_name(target, q)).write_bytes(onx.SerializeToString())
        model.boosters[target][1].save_model(str(out / f"{target}_p50.txt"))
    full = {
        "format": CARD_FORMAT,
        "model": "popularity_predictor",
        "features": list(model.feature_names),
        "tier0_features": list(TIER0_FEATURES),
        "targets": {t: f"log1p({t})" for t in TARGETS},
        "quantiles": list(QUANTILES),
        "interval_offsets": {t: model.widen.get(t, 0.0) for t in TARGETS},
        "trainer": asdict(cfg),
        "packages": {"lightgbm": lightgbm.__version__, "onnxmltools": onnxmltools.__version__},
        "trained_at": datetime.now(UTC).date().isoformat(),
        **card,
    }
    (out / CARD_FILE).write_text(json.dumps(full, indent=2, sort_keys=True, ensure_ascii=False))
    return full


def load_card(weights: Path) -> dict[str, Any]:
    card: dict[str, Any] = json.loads((weights / CARD_FILE).read_text())
    return card


def onnx_predict_raw(weights: Path, x: np.ndarray) -> np.ndarray:
    """float32 ``[n, 2, 3]`` raw quantiles of the exported graphs (ONNX Runtime, in-process)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    out = np.zeros((len(x), len(TARGETS), len(QUANTILES)), np.float32)
    for ti, target in enumerate(TARGETS):
        for qi, q in enumerate(QUANTILES):
            session = ort.InferenceSession(str(weights / onnx_name(target, q)), sess_options=opts,
                                           providers=["CPUExecutionProvider"])
            out[:, ti, qi] = session.run(None, {"FEATURES": x})[0].reshape(-1)
    return out


def verify_export(model: QuantileModel, weights: Path, x: np.ndarray) -> float:
    """Largest |ONNX − LightGBM| over the raw quantiles of ``x`` (log1p scale)."""
    return float(np.abs(onnx_predict_raw(weights, x) - model.predict_raw(x)).max())


__all__ = ["CARD_FILE", "export_model", "load_card", "onnx_name", "onnx_predict_raw",
           "verify_export"]
