"""``popularity_prediction``: views and likes with an 80 % interval, contributions and what-ifs.

Reads the Tier-0 artifacts (``DEPENDS_ON`` = :data:`~trendflow.forecast.tier0.TIER0_COMPONENTS`),
builds the feature vector with :func:`~trendflow.forecast.tier0.tier0_vector` — the function
training uses — at the horizon (param ``horizon_days``, default 30), and asks the served
``popularity_predictor`` (pinned per run like every model) in one request for the forecast and
for every what-if row (:mod:`trendflow.forecast.whatif`). The model's card fixes which columns it
reads; the server answers with the calibrated, sorted quantiles and the p50 boosters' tree-SHAP
contributions, which are summed per feature group (the 384 title-embedding dimensions are one
group) and stored with the forecast. No model served → ``model_not_found`` in ``setup``.

``RESOURCES``: one CPU, memory floor; the work is one Triton request of a few rows
(measured by ``benchmarks/bench_forecast.py``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from trendflow.contracts.arrays import ArraySpec
from trendflow.errors import ComponentError
from trendflow.forecast.tier0 import (
    DEFAULT_HORIZON_DAYS,
    TIER0_COMPONENTS,
    TIER0_FEATURES,
    tier0_vector,
)
from trendflow.forecast.whatif import group_contributions, used_by_model, whatif_rows
from trendflow.pipeline.components.base import (
    Component,
    ComponentContext,
    ComponentResult,
    Input,
    Resources,
)
from trendflow.pipeline.components.model_backed import BoundModel, bind_model, pack_texts


class PopularityPrediction(Component):
    """The forecast of a run from its Tier-0 artifacts, served by Triton."""

    NAME: ClassVar[str] = "popularity_prediction"
    SCHEMA_VERSION: ClassVar[int] = 1
    PRODUCER_VERSION: ClassVar[str] = "1.0.0"
    RESOURCES: ClassVar[Resources] = Resources(cpus=1.0, memory_mb=64)
    TIER: ClassVar[int] = 1
    INPUTS: ClassVar[frozenset[Input]] = frozenset({Input.COMPONENTS})
    DEPENDS_ON: ClassVar[tuple[str, ...]] = TIER0_COMPONENTS
    MODEL: ClassVar[str | None] = "popularity_predictor"
    USES_MODEL_SERVER: ClassVar[bool] = True
    DESCRIPTION: ClassVar[str] = (
        "Views and likes p10/p50/p90 at the horizon, per-feature contributions, what-if effects."
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._model: BoundModel | None = None

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {"horizon_days": DEFAULT_HORIZON_DAYS}

    @classmethod
    def outputs(cls) -> dict[str, ArraySpec]:
        q = "p10, p50, p90"
        return {
            "views": ArraySpec("float64", (3,), f"Forecast views ({q}, 80 % interval).", "views"),
            "likes": ArraySpec("float64", (3,), f"Forecast likes ({q}, 80 % interval).", "likes"),
            "horizon_days": ArraySpec("float64", (), "Age the forecast is asked at.", "days"),
            "features": ArraySpec(
                "float32", ("n_features",),
                "The Tier-0 row sent to the model (NaN = unknown).", None,
            ),
            "feature_names_utf8": ArraySpec("uint8", ("n_name_bytes",),
                                            "Feature names, UTF-8 (spans below).", None),
            "feature_name_spans": ArraySpec("int64", ("n_features", 2),
                                            "[start, end) byte span of each name.", None),
            "contribution_groups_utf8": ArraySpec("uint8", ("n_group_bytes",),
                                                  "Feature group names, UTF-8.", None),
            "contribution_group_spans": ArraySpec("int64", ("n_groups", 2),
                                                  "[start, end) byte span of each group.", None),
            "contributions": ArraySpec(
                "float64", (2, "n_groups"),
                "Tree-SHAP of p50 log1p(views) (row 0) and log1p(likes) (row 1) per group.",
                "log1p",
            ),
            "contribution_bias": ArraySpec("float64", (2,), "Expected p50 (log1p) of the "
                                           "training data (views, likes).", "log1p"),
            "whatif_utf8": ArraySpec("uint8", ("n_whatif_bytes",),
                                     "JSON {feature, label} of each what-if, UTF-8.", None),
            "whatif_spans": ArraySpec("int64", ("n_whatifs", 2), "Byte span per what-if.", None),
            "whatif_current": ArraySpec("float64", ("n_whatifs",), "The feature's value now.",
                                        None),
            "whatif_target": ArraySpec("float64", ("n_whatifs",), "The value it moves to.", None),
            "whatif_views": ArraySpec("float64", ("n_whatifs", 3),
                                      "Forecast views (p10, p50, p90) after the move.", "views"),
        }

    def setup(self, ctx: ComponentContext) -> None:
        super().setup(ctx)
        if float(self.params["horizon_days"]) <= 0:
            raise ComponentError(f"{self.NAME}: horizon_days must be > 0", component=self.NAME)
        self._model = bind_model(ctx, self.NAME)

    def reduce(self, partials: Sequence[Any]) -> ComponentResult:
        assert self._model is not None
        horizon = float(self.params["horizon_days"])
        vector = tier0_vector(self.context.dependencies, age_days=horizon)
        return predict(self._model, vector, horizon)


def predict(model: BoundModel, vector: np.ndarray, horizon: float) -> ComponentResult:
    """One request: the forecast row and every what-if row; the arrays of :meth:`outputs`."""
    rows, candidates = whatif_rows(vector)
    out = model.infer({"FEATURES": rows})
    quantiles = np.expm1(np.asarray(out["QUANTILES"], np.float64))
    contrib = np.asarray(out["CONTRIB"], np.float64)[0]
    if contrib.shape != (2, len(TIER0_FEATURES) + 1):
        raise ComponentError(
            f"{model.tag} answers contributions of {contrib.shape[-1] - 1} features; this "
            f"version's Tier-0 row has {len(TIER0_FEATURES)} (retrain the predictor)",
            model=model.tag,
        )
    used = used_by_model(contrib)
    keep = [i for i, w in enumerate(candidates) if used[TIER0_FEATURES.index(w.feature)]]
    whatifs = [candidates[i] for i in keep]
    grouped = group_contributions(contrib)
    names_buf, names_spans = pack_texts(list(TIER0_FEATURES))
    groups_buf, groups_spans = pack_texts(list(grouped.groups))
    w_buf, w_spans = pack_texts([json.dumps({"feature": w.feature, "label": w.label},
                                            ensure_ascii=False) for w in whatifs])
    return ComponentResult({
        "views": quantiles[0, 0],
        "likes": quantiles[0, 1],
        "horizon_days": np.array(horizon, np.float64),
        "features": np.ascontiguousarray(vector, np.float32),
        "feature_names_utf8": names_buf,
        "feature_name_spans": names_spans,
        "contribution_groups_utf8": groups_buf,
        "contribution_group_spans": groups_spans,
        "contributions": grouped.values,
        "contribution_bias": grouped.bias,
        "whatif_utf8": w_buf,
        "whatif_spans": w_spans,
        "whatif_current": np.array([w.current for w in whatifs], np.float64),
        "whatif_target": np.array([w.target for w in whatifs], np.float64),
        "whatif_views": quantiles[[1 + i for i in keep], 0].reshape(len(whatifs), 3),
    })
