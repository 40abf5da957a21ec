"""The owner's profile rules for the forecast, and the labelled-data loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.triton import SOURCE_REPO
from trendflow.contracts.profile import ProfileConfig
from trendflow.errors import InvalidProfile, ModelNotFound
from trendflow.forecast.labels import load_labels
from trendflow.forecast.tier0 import TIER0_COMPONENTS, check_predictor_served

RENDER = {"engine": "template"}


def _profile(names: list[str]) -> dict:
    return {"components": [{"name": n} for n in names], "render": RENDER}


def test_prediction_without_every_tier0_component_is_refused() -> None:
    with pytest.raises(InvalidProfile, match="faces"):
        ProfileConfig.parse(_profile([c for c in TIER0_COMPONENTS if c != "faces"]
                                     + ["popularity_prediction"]))
    ProfileConfig.parse(_profile([*TIER0_COMPONENTS, "popularity_prediction"]))
    ProfileConfig.parse(_profile(["metadata_features"]))  # no forecast, no rule


def test_a_forecast_without_a_trained_model_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "popularity_predictor" / "1").mkdir(parents=True)
    enabled = [*TIER0_COMPONENTS, "popularity_prediction"]
    mapping = {"popularity_prediction": "popularity_predictor:1"}
    with pytest.raises(ModelNotFound, match="trained popularity predictor"):
        check_predictor_served(enabled, mapping, repo)
    with pytest.raises(ModelNotFound):
        check_predictor_served(enabled, {}, SOURCE_REPO)
    check_predictor_served(["metadata_features"], {}, repo)


def test_the_loader_reads_the_shared_shape_and_counts_what_it_drops(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(
        "video_id,title,channel_title,category_id,tags,views,likes,dislikes,comment_total,date\n"
        "XpVt6Z1Gjjo,First,Chan A,24,a|b|c,100,10,1,1,13.09\n"
        "XpVt6Z1Gjjo,First,Chan A,24,a|b|c,500,40,1,1,1.1\n"  # 1 October: the later one
        "#NAME?,Broken,Chan B,22,[none],9,1,0,0,13.09\n"
        "K4wEI5zhHB0,Second,Chan B,28,[none],7,1,0,0,24.09xca\n"
        "cLdxuaxaQwc,Zero,Chan C,22,[none],0,0,0,0,13.09\n"
        "WYYvHb03Eog,Third,Chan C,22,[none],70,3,0,0,14.09\n"
    )
    videos, report = load_labels(path)
    assert report.rows == 6 and report.duplicates == 1 and report.videos == 2
    assert dict(report.dropped) == {"malformed video_id": 1, "malformed date": 1,
                                    "zero or negative counts": 1}
    first = next(v for v in videos if v.video_id == "XpVt6Z1Gjjo")
    assert (first.views, first.likes, first.meta.tags, first.meta.category_id) == (
        500, 40, ("a", "b", "c"), 24)
    assert first.age_days is None  # no publish time in this shape
