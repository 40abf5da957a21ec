"""The default predictor, rebuilt from the shared labelled CSV by ``trendflow models build``.

Recipe: load the shared dataset (:func:`~trendflow.forecast.labels.default_labels_path`; a
missing file is a :class:`~trendflow.errors.ConfigError` naming the path), featurize it
metadata-only through a temporary Triton serving the repository's own ``text_embedder``, measure
the held-out figures on unseen channels (model and baselines, :func:`evaluate_split`), fit on
every video, export ONNX + the model card, and check the graphs against the boosters.

Deterministic: the same CSV, package versions and :data:`TRAINER_VERSION` give the same trees
(fixed seeds, one thread), so a fresh clone serves the same forecast without a committed binary.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from trendflow.errors import ConfigError
from trendflow.forecast.export import export_model, verify_export
from trendflow.forecast.featurize import featurize
from trendflow.forecast.labels import SHARED_DATASET, default_labels_path, load_labels
from trendflow.forecast.serving import temporary_server
from trendflow.forecast.tier0 import model_input
from trendflow.forecast.train import TrainConfig, evaluate_split, fit
from trendflow.triton.client import TritonClient

TRAINER_VERSION = "2"
"""Bump on any change of the features, the trainer or its settings (rebuilds the model)."""
EXPORT_TOLERANCE = 1e-4
"""|ONNX − LightGBM| on log1p outputs (float32 thresholds and sums vs float64)."""


def build_sources() -> dict[str, str]:
    """What the default model is made from, beyond packages: the data and the trainer."""
    data = default_labels_path()
    return {
        "labels_sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
        "trainer": TRAINER_VERSION,
    }


def build_default_predictor(repository: Path, out: Path) -> float:
    """Train the default model into ``out``; returns the export check's max |diff|."""
    embedder = repository / "text_embedder" / "1" / "weights" / "BUILD.json"
    if not embedder.is_file():
        raise ConfigError(
            "the predictor's features need the text_embedder weights: build them first "
            "(`trendflow models build --model text_embedder`)", model="popularity_predictor",
        )
    path = default_labels_path()
    videos, report = load_labels(path)
    with temporary_server(repository, ["text_embedder"]) as client:
        table = featurize(videos, lambda: TritonClient(client.url))
    cfg = TrainConfig()
    evaluation = evaluate_split(table, cfg)
    model = fit(table, cfg)
    card = {
        "trained_on": {
            "description": "US trending YouTube videos of September-October 2017 (public "
                           "Kaggle dataset, CC0): metadata and title text only, no video "
                           "files; a biased sample of already popular videos",
            "file": str(SHARED_DATASET),
            "sha256": report.sha256,
            "rows_read": report.rows,
            "rows_dropped": dict(report.dropped),
            "videos": len(videos),
            "channels": len(set(table.channels)),
            "feature_set": "metadata + text (Tier-0 video components absent)",
            "target_age": "the last trending day of each video (no publish time in the "
                          "data): the model has no age input",
        },
        "evaluation": evaluation.as_dict(),
    }
    export_model(model, out, card=card, cfg=cfg)
    return verify_export(model, out, model_input(table.features, model.feature_names))


__all__ = ["EXPORT_TOLERANCE", "TRAINER_VERSION", "build_default_predictor", "build_sources"]
