"""A trained forecast served by the real Triton equals the in-process model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from tests.fixtures.triton import SOURCE_REPO
from tests.forecast.synthetic import generated_table
from trendflow.forecast.export import export_model, onnx_predict_raw
from trendflow.forecast.serving import temporary_server
from trendflow.forecast.tier0 import TIER0_FEATURES, model_input
from trendflow.forecast.train import TrainConfig, finish_quantiles, fit
from trendflow.triton.build import BUILD_FILE, sha256_file

CFG = TrainConfig(n_estimators=100, calibration_folds=3)


def test_served_quantiles_and_contributions_equal_in_process(tmp_path: Path) -> None:
    table = generated_table(600, seed=3)
    model = fit(table, CFG)
    repo = tmp_path / "repo"
    shutil.copytree(SOURCE_REPO / "popularity_predictor", repo / "popularity_predictor",
                    ignore=shutil.ignore_patterns("weights", "__pycache__"))
    weights = repo / "popularity_predictor" / "1" / "weights"
    export_model(model, weights, card={"trained_on": "generated (test)"}, cfg=CFG)
    files = {p.name: sha256_file(p) for p in sorted(weights.iterdir())}
    (weights / BUILD_FILE).write_text(json.dumps({"files": files}))
    # The predictor under test, beside nothing else: a second server on this repository.
    with temporary_server(repo, ["popularity_predictor"]) as client:
        rows = table.features[:40]
        out = client.infer("popularity_predictor", "1", {"FEATURES": rows})
        assert out["QUANTILES"].shape == (40, 2, 3)
        x = model_input(rows, model.feature_names)
        in_process = finish_quantiles(onnx_predict_raw(weights, x), model.offsets())
        assert np.abs(out["QUANTILES"] - in_process).max() <= 1e-5
        assert np.abs(out["QUANTILES"] - model.predict(x)).max() <= 1e-4  # vs LightGBM
        contrib = out["CONTRIB"]
        assert contrib.shape == (40, 2, len(TIER0_FEATURES) + 1)
        used = ~np.isnan(contrib[0, 0, :-1])
        assert [TIER0_FEATURES[j] for j in np.flatnonzero(used)] == list(model.feature_names)
        expected = model.contributions(x)
        assert np.abs(contrib[:, :, :-1][:, :, used] - expected[:, :, :-1]).max() <= 1e-4
        assert np.abs(np.nansum(contrib[:, :, :-1], -1) + contrib[:, :, -1]
                      - model.predict_raw(x)[:, :, 1]).max() <= 1e-4
