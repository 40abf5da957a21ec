"""The forecast's accuracy on channels it has not seen, against two baselines, in one run.

Loads the labelled CSV (default: the shared dataset), featurizes it metadata-only through a
temporary Triton serving the repository's ``text_embedder`` (or reads ``--features`` from
``trendflow predictor featurize``), splits by channel, and prints Spearman ρ, MAE on log1p and
80 % interval coverage for views and likes of:

- the model (LightGBM quantile boosters, conformal intervals — what ships);
- the same model with scikit-learn's HistGradientBoosting in place of LightGBM (why LightGBM);
- baseline 1: the training median (and its 10th/90th percentiles) for every video;
- baseline 2: the same trainer on category and title length only.

Training CPU seconds are measured in the same run (the machine's load moves wall time).

    python benchmarks/bench_forecast.py [--labels CSV | --features NPZ] [--repository DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from trendflow.forecast.featurize import FeatureTable, featurize
from trendflow.forecast.labels import default_labels_path, load_labels
from trendflow.forecast.serving import temporary_server
from trendflow.forecast.train import (
    QUANTILES,
    TrainConfig,
    evaluate_split,
    format_metrics,
    score,
    split_by_channel,
    subset,
    usable_features,
)
from trendflow.settings import get_settings
from trendflow.triton.client import TritonClient


def _hgb(train: FeatureTable, test: FeatureTable) -> tuple[dict, float]:
    from sklearn.ensemble import HistGradientBoostingRegressor

    mask = usable_features(train.features)
    x, xt, y = train.features[:, mask], test.features[:, mask], train.targets()
    cpu = time.process_time()
    pred = np.zeros((len(xt), 2, 3))
    for ti in range(2):
        for qi, q in enumerate(QUANTILES):
            model = HistGradientBoostingRegressor(loss="quantile", quantile=q, max_iter=200,
                                                  learning_rate=0.08, max_leaf_nodes=15,
                                                  random_state=17)
            pred[:, ti, qi] = model.fit(x, y[:, ti]).predict(xt)
    return score(np.sort(pred, axis=-1), test.targets()), time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", type=Path)
    parser.add_argument("--features", type=Path)
    parser.add_argument("--repository", type=Path,
                        help="a built model repository (default: settings triton.repository)")
    args = parser.parse_args()
    if args.features:
        table = FeatureTable.load(str(args.features))
    else:
        videos, report = load_labels(args.labels or default_labels_path())
        print(f"labels: {report.summary()}")
        repo = args.repository or Path(get_settings().triton.repository)
        start = time.monotonic()
        with temporary_server(repo, ["text_embedder"]) as client:
            table = featurize(videos, lambda: TritonClient(client.url))
        print(f"featurized {len(videos)} videos in {time.monotonic() - start:.0f} s (wall)")
    cfg = TrainConfig()
    cpu = time.process_time()
    evaluation = evaluate_split(table, cfg)
    lgb_cpu = time.process_time() - cpu
    train_idx, test_idx = split_by_channel(table, seed=cfg.seed)
    hgb, hgb_cpu = _hgb(subset(table, train_idx), subset(table, test_idx))
    print(f"split by channel: {evaluation.train_rows} train / {evaluation.test_rows} test rows, "
          f"{evaluation.test_channels} unseen channels")
    print(format_metrics("LightGBM (shipped)", evaluation.model))
    print(format_metrics("HistGradientBoosting", hgb) + "  (raw quantiles, no calibration)")
    print(format_metrics("baseline: median", evaluation.median))
    print(format_metrics("baseline: category+title length", evaluation.category_title_length))
    base = evaluation.category_title_length
    for t, m in evaluation.model.items():
        print(f"{t}: ρ {m.spearman:.3f} vs {base[t].spearman:.3f} (baseline 2); MAE ratio to "
              f"the median baseline {m.mae_log1p / evaluation.median[t].mae_log1p:.3f}")
    print(f"CPU s: LightGBM evaluation (model with 3-fold calibration + baseline 2) "
          f"{lgb_cpu:.1f}; HistGradientBoosting 6 boosters without calibration {hgb_cpu:.1f}")


if __name__ == "__main__":
    main()
