"""Age is an input: labels with publish and observation times train a model that answers at the
asked horizon (the shared trending set has no publish time, so its model has no age input)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.forecast.synthetic import TITLE, labelled_table
from trendflow.forecast.featurize import FeatureTable
from trendflow.forecast.labels import load_labels
from trendflow.forecast.present import display
from trendflow.forecast.tier0 import AGE_FEATURE, TIER0_FEATURES, model_input
from trendflow.forecast.train import TrainConfig, evaluate_model, fit, split_by_channel, subset

AGE = TIER0_FEATURES.index(AGE_FEATURE)


def test_labels_with_publish_and_observation_times_give_the_age(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(
        "video_id,title,channel_title,views,likes,published_at,observed_at\n"
        "XpVt6Z1Gjjo,First,Chan A,100,10,2024-03-01T12:00:00+00:00,2024-03-13T00:00:00+00:00\n"
        "K4wEI5zhHB0,Second,Chan B,70,3,2024-03-01T00:00:00+00:00,\n"
        "WYYvHb03Eog,Third,Chan C,70,3,2024-03-01T00:00:00,2024-03-02T00:00:00+00:00\n"
    )
    videos, report = load_labels(path)
    ages = {v.video_id: v.age_days for v in videos}
    assert ages == {"XpVt6Z1Gjjo": 11.5, "K4wEI5zhHB0": None}  # no observation: no age
    assert dict(report.dropped) == {"unreadable value": 1}  # a time without a zone is refused


def _aged_table(n: int = 1200, seed: int = 1) -> FeatureTable:
    """log1p(views) = 7 + 0.05·title_chars + 1.2·log1p(age_days) + N(0, 0.3²)."""
    rng = np.random.default_rng(seed)
    x = np.full((n, len(TIER0_FEATURES)), np.nan, np.float32)
    title = rng.integers(5, 100, n)
    age = rng.uniform(1, 60, n)
    x[:, TITLE], x[:, AGE] = title, age
    return labelled_table(x, 7 + 0.05 * title + 1.2 * np.log1p(age), rng)


@pytest.fixture(scope="module")
def aged() -> tuple:
    table = _aged_table()
    train_idx, test_idx = split_by_channel(table)
    return fit(subset(table, train_idx), TrainConfig(n_estimators=150)), subset(table, test_idx)


def test_a_model_trained_with_ages_forecasts_more_views_at_a_later_horizon(aged: tuple) -> None:
    model, test = aged
    assert AGE_FEATURE in model.feature_names
    assert all(m.spearman >= 0.9 for m in evaluate_model(model, test).values())
    row = test.features[0].copy()
    rows = np.repeat(row[None, :], 2, axis=0)
    rows[0, AGE], rows[1, AGE] = 3.0, 30.0
    p50 = model.predict(model_input(rows, model.feature_names))[:, 0, 1]
    # The known effect: 1.2·(log 31 − log 4) ≈ 2.5 on log1p(views) from 3 to 30 days.
    assert 1.5 < p50[1] - p50[0] < 3.5
    views = np.expm1(model.predict(model_input(rows[1:], model.feature_names))[0, 0])
    assert display(views, "views", 30.0, age_modelled=True).endswith(
        "80 % interval) at 30 days")
