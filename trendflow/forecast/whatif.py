"""What-if effects: the forecast again with one controllable feature moved to a named target.

Each :data:`WHAT_IFS` entry is a feature an uploader controls and a target value worth
suggesting. :func:`whatif_rows` appends, for each one whose current value is known and differs
from the target, a copy of the Tier-0 row with only that feature moved; the served model
answers all rows in one request. The effect is the change of the p50 views, reported with the
moved forecast's own 80 % interval — the material of the analysis text's recommendations.
A feature the served model does not use (its contributions are NaN) gives no what-if.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trendflow.forecast.tier0 import TIER0_FEATURES, group_of


@dataclass(frozen=True, slots=True)
class WhatIfSpec:
    feature: str
    target: float
    label: str  # what the recommendation says


WHAT_IFS: tuple[WhatIfSpec, ...] = (
    WhatIfSpec("metadata_features.title_chars", 50, "a title of about 50 characters"),
    WhatIfSpec("metadata_features.tags_count", 15, "15 tags"),
    WhatIfSpec("metadata_features.description_chars", 1000,
               "a description of about 1,000 characters"),
    WhatIfSpec("metadata_features.publish_hour", 15, "publishing at 15:00 UTC"),
    WhatIfSpec("loudness.integrated_lufs", -14, "loudness of -14 LUFS (YouTube's reference)"),
    WhatIfSpec("shot_detection.cuts_per_minute", 12, "about 12 cuts per minute"),
    WhatIfSpec("speech_activity.speech_ratio", 0.6, "speech in about 60 % of the video"),
    WhatIfSpec("faces.first_seconds_face_ratio", 1.0, "a face on screen in the first 3 seconds"),
)


@dataclass(frozen=True, slots=True)
class WhatIf:
    feature: str
    label: str
    current: float
    target: float


def whatif_rows(
    vector: np.ndarray, specs: Sequence[WhatIfSpec] = WHAT_IFS
) -> tuple[np.ndarray, list[WhatIf]]:
    """float32 ``[1 + k, T]``: the row itself, then one moved row per applicable what-if."""
    rows = [vector]
    whatifs = []
    for spec in specs:
        j = TIER0_FEATURES.index(spec.feature)
        current = float(vector[j])
        if math.isnan(current) or current == spec.target:
            continue
        moved = vector.copy()
        moved[j] = spec.target
        rows.append(moved)
        whatifs.append(WhatIf(spec.feature, spec.label, current, float(spec.target)))
    return np.ascontiguousarray(np.stack(rows), np.float32), whatifs


def used_by_model(contrib: np.ndarray) -> np.ndarray:
    """Mask over Tier-0 features that the model reads (its contributions are not NaN)."""
    return ~np.isnan(contrib[0, : len(TIER0_FEATURES)])


@dataclass(frozen=True, slots=True)
class Contributions:
    groups: tuple[str, ...]
    values: np.ndarray  # float64 [2, n_groups]
    bias: np.ndarray  # float64 [2]


def group_contributions(contrib: np.ndarray) -> Contributions:
    """``[2, T + 1]`` per-feature contributions (NaN = unused) summed per feature group."""
    used = used_by_model(contrib)
    order: list[str] = []
    sums: dict[str, np.ndarray] = {}
    for j, name in enumerate(TIER0_FEATURES):
        if not used[j]:
            continue
        group = group_of(name)
        if group not in sums:
            order.append(group)
            sums[group] = np.zeros(2)
        sums[group] += contrib[:, j]
    values = np.stack([sums[g] for g in order], axis=1) if order else np.zeros((2, 0))
    return Contributions(tuple(order), values.astype(np.float64),
                         contrib[:, -1].astype(np.float64))


__all__ = ["WHAT_IFS", "Contributions", "WhatIf", "WhatIfSpec", "group_contributions",
           "used_by_model", "whatif_rows"]
