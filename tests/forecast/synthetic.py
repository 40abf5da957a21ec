"""A generated labelled set whose targets follow a known function of Tier-0 features."""

from __future__ import annotations

import numpy as np

from trendflow.forecast.featurize import FeatureTable
from trendflow.forecast.tier0 import TIER0_FEATURES

TITLE = TIER0_FEATURES.index("metadata_features.title_chars")
TAGS = TIER0_FEATURES.index("metadata_features.tags_count")
CATEGORY = TIER0_FEATURES.index("metadata_features.category_id")
NOISE = 0.3


def generated_table(n: int = 1200, seed: int = 0) -> FeatureTable:
    """log1p(views) = 8 + 0.05·title_chars + 0.1·tags + 0.5·[category 10] + N(0, 0.3²).

    Every other Tier-0 feature is NaN (unknown), like a metadata-only labelled row.
    """
    rng = np.random.default_rng(seed)
    x = np.full((n, len(TIER0_FEATURES)), np.nan, np.float32)
    title = rng.integers(5, 100, n)
    tags = rng.integers(0, 30, n)
    category = rng.choice([10, 22, 24], n)
    x[:, TITLE], x[:, TAGS], x[:, CATEGORY] = title, tags, category
    mean = 8 + 0.05 * title + 0.1 * tags + 0.5 * (category == 10)
    return labelled_table(x, mean, rng)


def labelled_table(x: np.ndarray, mean: np.ndarray, rng: np.random.Generator) -> FeatureTable:
    """Rows ``x`` labelled log1p(views) = ``mean`` + N(0, 0.3²), log1p(likes) = that − 3 +
    N(0, 0.3²), over 300 channels."""
    n = len(x)
    log_views = mean + rng.normal(0, NOISE, n)
    log_likes = log_views - 3 + rng.normal(0, NOISE, n)
    return FeatureTable(
        video_ids=tuple(f"v{i:010d}" for i in range(n)),
        channels=tuple(f"channel{i % 300}" for i in range(n)),
        features=x,
        views=np.round(np.expm1(log_views)).astype(np.int64),
        likes=np.round(np.expm1(log_likes)).astype(np.int64),
    )
