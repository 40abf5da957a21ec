"""``trendflow predictor featurize|train|evaluate``: the forecast on any labelled file.

``featurize`` computes the Tier-0 rows of a labels file (metadata-only: ``metadata_features`` and
``text_embeddings`` through the Triton at ``settings.triton.url``) into an ``.npz``; ``train`` and
``evaluate`` take either that file (``--features``) or the labels themselves.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from trendflow.errors import InputError
from trendflow.forecast.featurize import FeatureTable


def _table(args: argparse.Namespace) -> FeatureTable:
    from trendflow.forecast.featurize import featurize
    from trendflow.forecast.labels import default_labels_path, load_labels
    from trendflow.settings import get_settings
    from trendflow.triton.client import TritonClient

    if getattr(args, "features", None):
        if args.labels:
            raise InputError("give --labels or --features, not both")
        return FeatureTable.load(args.features)
    path = Path(args.labels) if args.labels else default_labels_path()
    videos, report = load_labels(path)
    print(f"labels {path}: {report.summary()}")
    settings = get_settings().triton
    return featurize(videos, lambda: TritonClient.from_settings(settings))


def _featurize(args: argparse.Namespace) -> int:
    table = _table(args)
    table.save(args.out)
    print(f"{len(table.views)} Tier-0 rows → {args.out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from trendflow.forecast.export import export_model, verify_export
    from trendflow.forecast.tier0 import model_input
    from trendflow.forecast.train import TrainConfig, evaluate_split, fit, format_metrics

    table = _table(args)
    cfg = TrainConfig(seed=args.seed)
    evaluation = evaluate_split(table, cfg)
    for name, metrics in (("model", evaluation.model), ("baseline: median", evaluation.median),
                          ("baseline: category+title length",
                           evaluation.category_title_length)):
        print(format_metrics(name, metrics))
    model = fit(table, cfg)
    out = Path(args.out)
    card = {"trained_on": {"file": args.labels or args.features, "videos": len(table.views),
                           "channels": len(set(table.channels))},
            "evaluation": evaluation.as_dict()}
    export_model(model, out, card=card, cfg=cfg)
    diff = verify_export(model, out, model_input(table.features, model.feature_names))
    print(f"exported to {out}: ONNX vs LightGBM max |diff| {diff:.2e}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from trendflow.forecast.train import (
        evaluate_split,
        format_metrics,
        median_baseline,
        score,
    )

    table = _table(args)
    if args.model:
        from trendflow.forecast.export import load_card, onnx_predict_raw
        from trendflow.forecast.tier0 import model_input
        from trendflow.forecast.train import finish_quantiles

        weights = Path(args.model)
        card = load_card(weights)
        offsets = [[-card["interval_offsets"][t], 0.0, card["interval_offsets"][t]]
                   for t in ("views", "likes")]
        import numpy as np

        pred = finish_quantiles(
            onnx_predict_raw(weights, model_input(table.features, card["features"])),
            np.array(offsets, np.float32),
        )
        y = table.targets()
        print(format_metrics("model " + str(weights), score(pred, y)))
        print(format_metrics("baseline: median of these", score(median_baseline(y, len(y)), y)))
        return 0
    evaluation = evaluate_split(table)
    print(format_metrics("model", evaluation.model))
    print(format_metrics("baseline: median", evaluation.median))
    print(format_metrics("baseline: category+title length", evaluation.category_title_length))
    if args.json:
        print(json.dumps(evaluation.as_dict(), indent=2))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predictor`` command group."""
    pred = subparsers.add_parser("predictor", help="the forecast: featurize, train, evaluate")
    sub = pred.add_subparsers(dest="predictor_command", required=True)

    def source(p: argparse.ArgumentParser) -> None:
        p.add_argument("--labels", help="labels CSV/Parquet (default: the shared dataset)")
        p.add_argument("--features", help="an .npz written by `predictor featurize`")

    f = sub.add_parser("featurize", help="Tier-0 rows of labelled videos (needs Triton)")
    f.add_argument("--labels", help="labels CSV/Parquet (default: the shared dataset)")
    f.add_argument("--out", required=True, help="output .npz")
    f.set_defaults(func=_featurize)
    t = sub.add_parser("train", help="fit on a channel split, print figures, export ONNX")
    source(t)
    t.add_argument("--out", required=True, help="weights folder to write")
    t.add_argument("--seed", type=int, default=17)
    t.set_defaults(func=_train)
    e = sub.add_parser("evaluate", help="held-out figures vs the baselines, or of --model")
    source(e)
    e.add_argument("--model", help="a weights folder: score it on all of the labels")
    e.add_argument("--json", action="store_true", help="also print the figures as JSON")
    e.set_defaults(func=_evaluate)


__all__ = ["register"]
