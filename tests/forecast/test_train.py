"""Training recovers a known function; intervals cover; what-ifs have the known sign."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.forecast.synthetic import TAGS, TITLE, generated_table
from trendflow.forecast.export import export_model, onnx_predict_raw
from trendflow.forecast.tier0 import model_input
from trendflow.forecast.train import (
    TrainConfig,
    evaluate_model,
    finish_quantiles,
    fit,
    score,
    split_by_channel,
    subset,
)
from trendflow.forecast.whatif import WhatIfSpec, whatif_rows

CFG = TrainConfig(n_estimators=150)


@pytest.fixture(scope="module")
def split() -> tuple:
    table = generated_table()
    train_idx, test_idx = split_by_channel(table)
    train, test = subset(table, train_idx), subset(table, test_idx)
    return fit(train, CFG), train, test


def test_training_recovers_the_known_function_with_calibrated_intervals(split: tuple) -> None:
    model, _, test = split
    assert set(model.feature_names) == {"metadata_features.title_chars",
                                        "metadata_features.tags_count",
                                        "metadata_features.category_id"}
    metrics = evaluate_model(model, test)
    for target, m in metrics.items():
        assert m.spearman >= 0.9, (target, m)
        assert 0.75 <= m.coverage <= 0.85, (target, m)


def test_quantiles_are_monotone(split: tuple) -> None:
    model, _, test = split
    pred = model.predict(model_input(test.features, model.feature_names))
    assert (np.diff(pred, axis=-1) >= 0).all()
    crossing = np.array([[[1.0, 0.5, 2.0]]])
    assert finish_quantiles(crossing, np.zeros((1, 3), np.float32)).tolist() == [[[0.5, 1, 2]]]


def test_whatif_sign_matches_the_known_effect(split: tuple) -> None:
    model, _, test = split
    row = test.features[0].copy()
    row[TITLE], row[TAGS] = 20, 25
    specs = (WhatIfSpec("metadata_features.title_chars", 80, "longer"),
             WhatIfSpec("metadata_features.tags_count", 0, "no tags"))
    rows, whatifs = whatif_rows(row, specs)
    p50 = model.predict(model_input(rows, model.feature_names))[:, 0, 1]
    assert [w.feature for w in whatifs] == [s.feature for s in specs]
    assert p50[1] > p50[0] + 1.0  # +60 characters ≈ +3 on log1p(views)
    assert p50[2] < p50[0] - 1.0  # 25 tags → none ≈ -2.5


def test_same_seed_gives_the_same_onnx_bytes_and_the_export_matches(
    split: tuple, tmp_path: Path
) -> None:
    model, train, _ = split
    again = fit(train, CFG)
    a, b = tmp_path / "a", tmp_path / "b"
    export_model(model, a, card={}, cfg=CFG)
    export_model(again, b, card={}, cfg=CFG)
    for path in sorted(a.glob("*.onnx")) + sorted(a.glob("*.txt")):
        assert path.read_bytes() == (b / path.name).read_bytes(), path.name
    x = model_input(train.features, model.feature_names)
    assert np.abs(onnx_predict_raw(a, x) - model.predict_raw(x)).max() < 1e-4
    assert score(model.predict(x), train.targets())["views"].spearman > 0.9
