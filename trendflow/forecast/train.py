"""Fit, evaluate and export the forecast: quantile gradient-boosted trees on log1p targets.

Six LightGBM boosters — ``log1p(views)`` and ``log1p(likes)`` × the 10th, 50th and 90th
percentiles (``objective="quantile"``) — on the Tier-0 columns that vary in the training data
(:func:`usable_features`). LightGBM was picked by measurement against scikit-learn's
``HistGradientBoostingRegressor(loss="quantile")`` on the same channel split
(``benchmarks/bench_forecast.py``; figures in ``docs/forecast.md``), and it gives exact tree-SHAP
contributions (``pred_contrib``) for the recommendations.

Intervals: the raw quantile boosters of a small set are over-confident on channels they have not
seen, so the p10/p90 offsets are widened by split-conformal calibration (conformalized quantile
regression): grouped out-of-fold predictions on the training set give, per target, the amount
``c`` by which ``[p10 − c, p90 + c]`` covers 80 % of the held-out rows. The three outputs are
then sorted per row, so ``p10 ≤ p50 ≤ p90`` always (a sorted set of quantile estimates is never
worse than the unsorted one).

Determinism: fixed seeds, ``deterministic=True``, row-wise histograms and a fixed thread count,
so the same rows give the same trees and the same ONNX bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from trendflow.forecast.featurize import FeatureTable
from trendflow.forecast.tier0 import TIER0_FEATURES, model_input

QUANTILES: tuple[float, ...] = (0.1, 0.5, 0.9)
TARGETS: tuple[str, ...] = ("views", "likes")
COVERAGE = 0.8


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """The boosters' knobs (defaults measured on the shared set; see docs/forecast.md)."""

    n_estimators: int = 200
    learning_rate: float = 0.08
    num_leaves: int = 15
    min_child_samples: int = 20
    colsample_bytree: float = 0.3
    reg_lambda: float = 1.0
    max_bin: int = 63
    seed: int = 17
    # One thread: LightGBM's OpenMP threads spin when the cores are shared (measured 11x the
    # CPU time with 2 threads on a busy 2-core machine, for no gain).
    threads: int = 1
    calibration_folds: int = 3

    def params(self, alpha: float) -> dict[str, Any]:
        return {
            "objective": "quantile", "alpha": alpha, "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "colsample_bytree": self.colsample_bytree, "reg_lambda": self.reg_lambda,
            "max_bin": self.max_bin,
            "random_state": self.seed, "n_jobs": self.threads, "deterministic": True,
            "force_row_wise": True, "verbose": -1,
        }


@dataclass(slots=True)
class QuantileModel:
    """The fitted boosters (``boosters[target][q]``), their features and interval offsets."""

    feature_names: tuple[str, ...]
    boosters: dict[str, list[Any]]
    widen: dict[str, float] = field(default_factory=dict)  # conformal offset per target

    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        """float64 ``[n, 2, 3]`` straight from the boosters (log1p scale, before calibration)."""
        return np.stack([
            np.stack([b.predict(x, raw_score=True) for b in self.boosters[t]], axis=1)
            for t in TARGETS
        ], axis=1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """float64 ``[n, 2, 3]``: p10/p50/p90 of log1p(views), log1p(likes), monotone."""
        return finish_quantiles(self.predict_raw(x), self.offsets())

    def offsets(self) -> np.ndarray:
        """float32 ``[2, 3]`` added to the raw quantiles: ``[-c, 0, +c]`` per target."""
        return np.array([[-self.widen.get(t, 0.0), 0.0, self.widen.get(t, 0.0)]
                         for t in TARGETS], np.float32)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """float64 ``[n, 2, F + 1]``: tree-SHAP of the p50 boosters (last column: the bias)."""
        return np.stack([self.boosters[t][1].predict(x, pred_contrib=True) for t in TARGETS],
                        axis=1)


def finish_quantiles(raw: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Raw ``[n, 2, 3]`` quantiles + the calibration offsets, sorted along the last axis.

    The served model applies exactly this (``triton_repo/popularity_predictor/1/model.py``).
    """
    return np.sort(raw + offsets.astype(raw.dtype), axis=-1)


def usable_features(x: np.ndarray) -> np.ndarray:
    """Mask of the columns with at least two distinct known values (others carry nothing)."""
    mask = np.zeros(x.shape[1], bool)
    for j in range(x.shape[1]):
        col = x[:, j]
        known = col[~np.isnan(col)]
        mask[j] = known.size > 0 and bool((known != known[0]).any())
    return mask


def _fit_boosters(x: np.ndarray, y: np.ndarray, cfg: TrainConfig) -> dict[str, list[Any]]:
    import lightgbm as lgb

    out: dict[str, list[Any]] = {}
    for ti, target in enumerate(TARGETS):
        out[target] = []
        for q in QUANTILES:
            model = lgb.LGBMRegressor(**cfg.params(q))
            model.fit(x, y[:, ti])
            out[target].append(model.booster_)
    return out


def group_folds(groups: Sequence[str], k: int, seed: int) -> list[np.ndarray]:
    """``k`` disjoint index sets; every group (channel) lies in exactly one."""
    names = sorted(set(groups))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(names))
    fold_of = {names[i]: n % k for n, i in enumerate(order)}
    labels = np.array([fold_of[g] for g in groups])
    return [np.flatnonzero(labels == f) for f in range(k)]


def fit(table: FeatureTable, cfg: TrainConfig | None = None,
        features: Sequence[str] | None = None) -> QuantileModel:
    """Train on ``table`` (all of it); ``features``: a subset of Tier-0 (default: the usable)."""
    cfg = cfg or TrainConfig()
    names = tuple(features) if features is not None else tuple(
        np.array(TIER0_FEATURES)[usable_features(table.features)]
    )
    x = model_input(table.features, names)
    y = table.targets()
    model = QuantileModel(names, _fit_boosters(x, y, cfg))
    model.widen = _conformal_widen(x, y, table.channels, cfg)
    return model


def _conformal_widen(
    x: np.ndarray, y: np.ndarray, groups: Sequence[str], cfg: TrainConfig
) -> dict[str, float]:
    """Per target, the offset that makes grouped out-of-fold ``[p10, p90]`` cover 80 %."""
    if cfg.calibration_folds < 2 or len(set(groups)) < cfg.calibration_folds:
        return {t: 0.0 for t in TARGETS}
    scores: list[np.ndarray] = []
    for test in group_folds(groups, cfg.calibration_folds, cfg.seed):
        train = np.setdiff1d(np.arange(len(y)), test)
        fold = QuantileModel((), _fit_boosters(x[train], y[train], cfg))
        raw = fold.predict_raw(x[test])
        # CQR conformity score: how far the truth lies outside the interval (negative inside).
        scores.append(np.maximum(raw[:, :, 0] - y[test], y[test] - raw[:, :, 2]))
    all_scores = np.concatenate(scores)
    n = len(all_scores)
    level = min(1.0, math.ceil((n + 1) * COVERAGE) / n)
    return {t: float(np.quantile(all_scores[:, i], level, method="higher"))
            for i, t in enumerate(TARGETS)}


# --- evaluation ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Metrics:
    """Held-out figures for one target: Spearman ρ and MAE of p50 on log1p, p10–p90 coverage."""

    spearman: float
    mae_log1p: float
    coverage: float
    n: int


def score(pred: np.ndarray, y: np.ndarray) -> dict[str, Metrics]:
    """``pred`` ``[n, 2, 3]`` against ``y`` ``[n, 2]`` (log1p), per target."""
    from scipy.stats import spearmanr

    out = {}
    for i, target in enumerate(TARGETS):
        p50 = pred[:, i, 1]
        rho = float(spearmanr(p50, y[:, i]).statistic) if np.ptp(p50) > 0 else 0.0
        inside = (pred[:, i, 0] <= y[:, i]) & (y[:, i] <= pred[:, i, 2])
        out[target] = Metrics(rho, float(np.abs(p50 - y[:, i]).mean()), float(inside.mean()),
                              len(y))
    return out


def median_baseline(y_train: np.ndarray, n: int) -> np.ndarray:
    """Every video gets the training set's p10/p50/p90 (what a forecast without features says)."""
    q = np.quantile(y_train, QUANTILES, axis=0).T  # [2, 3]
    return np.broadcast_to(q, (n, 2, 3)).copy()


BASELINE_FEATURES: tuple[str, ...] = (
    "metadata_features.category_id",
    "metadata_features.title_chars",
)
"""The second baseline: the same trainer on category and title length only."""


def split_by_channel(
    table: FeatureTable, test_share: float = 0.2, seed: int = 17
) -> tuple[np.ndarray, np.ndarray]:
    """Train/test row indices with disjoint channels (about ``test_share`` of the channels)."""
    k = max(2, round(1 / test_share))
    test = group_folds(table.channels, k, seed)[0]
    return np.setdiff1d(np.arange(len(table.views)), test), test


def subset(table: FeatureTable, rows: np.ndarray) -> FeatureTable:
    return FeatureTable(tuple(table.video_ids[i] for i in rows),
                        tuple(table.channels[i] for i in rows), table.features[rows],
                        table.views[rows], table.likes[rows])


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The model and both baselines on the same held-out channels."""

    model: dict[str, Metrics]
    median: dict[str, Metrics]
    category_title_length: dict[str, Metrics]
    train_rows: int
    test_rows: int
    test_channels: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "split": {"train_rows": self.train_rows, "test_rows": self.test_rows,
                      "test_channels": self.test_channels, "grouped_by": "channel"},
            "model": {t: asdict(m) for t, m in self.model.items()},
            "baseline_median": {t: asdict(m) for t, m in self.median.items()},
            "baseline_category_title_length": {
                t: asdict(m) for t, m in self.category_title_length.items()
            },
        }


def evaluate_split(table: FeatureTable, cfg: TrainConfig | None = None) -> Evaluation:
    """Fit on the training channels, score the model and the two baselines on the others."""
    cfg = cfg or TrainConfig()
    train_idx, test_idx = split_by_channel(table, seed=cfg.seed)
    train, test = subset(table, train_idx), subset(table, test_idx)
    model = fit(train, cfg)
    y = test.targets()
    pred = model.predict(model_input(test.features, model.feature_names))
    base = fit(train, cfg, BASELINE_FEATURES)
    base_pred = base.predict(model_input(test.features, base.feature_names))
    return Evaluation(
        model=score(pred, y),
        median=score(median_baseline(train.targets(), len(y)), y),
        category_title_length=score(base_pred, y),
        train_rows=len(train_idx), test_rows=len(test_idx),
        test_channels=len(set(test.channels)),
    )


def evaluate_model(model: QuantileModel, table: FeatureTable) -> dict[str, Metrics]:
    """A trained model's figures on any labelled table (e.g. data it has never seen)."""
    return score(model.predict(model_input(table.features, model.feature_names)),
                 table.targets())


def format_metrics(name: str, metrics: dict[str, Metrics]) -> str:
    return "  ".join(
        f"{name:<32} {t}: ρ {m.spearman:.3f}  MAE {m.mae_log1p:.3f}  cover {100 * m.coverage:.1f} %"
        for t, m in metrics.items()
    )


__all__ = [
    "BASELINE_FEATURES",
    "Evaluation",
    "Metrics",
    "QUANTILES",
    "QuantileModel",
    "TARGETS",
    "TrainConfig",
    "evaluate_model",
    "evaluate_split",
    "finish_quantiles",
    "fit",
    "format_metrics",
    "median_baseline",
    "score",
    "split_by_channel",
    "usable_features",
]
