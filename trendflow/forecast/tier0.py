"""Tier-0: the training schema of the forecast, and the one function that builds its vector.

:data:`TIER0_FEATURES` is the declared, ordered list of every feature the predictor may be
trained on, each read from one Tier-0 component's NPZ keys (:data:`TIER0_COMPONENTS`). Training
(:mod:`trendflow.forecast.train`) and serving (the ``popularity_prediction`` component) both call
:func:`tier0_vector` on the same ``{component: arrays}`` mapping the runner gives a dependant, so
the two cannot drift apart (a test asserts they are identical for one run).

Unknown values are NaN, never a made-up default: a component whose artifact is ``empty`` (no
audio, no faces…), a metadata field the source did not give (sentinel ``-1`` in
``metadata_features``), a video fact of a metadata-only run. Gradient-boosted trees route NaN
down a learned branch. A trained model declares the subset it uses (the features that vary in
its training data) in its model card; :func:`model_input` selects that subset by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from trendflow.contracts.profile import TIER0_COMPONENTS
from trendflow.errors import ModelNotFound

if TYPE_CHECKING:
    from trendflow.triton.client import InferenceClient

EMBEDDING_DIM = 384
FIRST_SECONDS_S = 3.0
"""``faces.first_seconds_face_ratio`` looks at the sampled frames before this time."""

Arrays = Mapping[str, np.ndarray]
Extract = Callable[[Arrays], Sequence[float]]


@dataclass(frozen=True, slots=True)
class FeatureGroup:
    """One or more consecutive features read from one component (``width`` > 1: a vector)."""

    name: str  # "<component>.<feature>"
    extract: Extract
    width: int = 1

    @property
    def component(self) -> str:
        return self.name.split(".", 1)[0]

    def names(self) -> list[str]:
        return [self.name] if self.width == 1 else [f"{self.name}[{i}]" for i in range(self.width)]


def _scalar(key: str, *, unknown: int | None = None, log1p: bool = False) -> Extract:
    def extract(arrays: Arrays) -> Sequence[float]:
        value = float(arrays[key])
        if unknown is not None and value == unknown:
            return [math.nan]
        return [math.log1p(value) if log1p else value]

    return extract


def _when(flag: str, key: str) -> Extract:
    """``key`` where the boolean ``flag`` is true, else NaN (e.g. format keys of a probe)."""

    def extract(arrays: Arrays) -> Sequence[float]:
        return [float(arrays[key]) if bool(arrays[flag]) else math.nan]

    return extract


def _vector(key: str) -> Extract:
    def extract(arrays: Arrays) -> Sequence[float]:
        return [float(v) for v in np.asarray(arrays[key], np.float64).reshape(-1)]

    return extract


def _first_seconds_face_ratio(arrays: Arrays) -> Sequence[float]:
    counts = np.asarray(arrays["face_count"])
    early = np.asarray(arrays["timestamps_s"]) < FIRST_SECONDS_S
    return [float((counts[early] > 0).mean()) if early.any() else math.nan]


def _metadata_groups() -> list[FeatureGroup]:
    groups = []
    for field in ("title", "description", "tags"):
        for stat in ("chars", "words", "caps_ratio", "digits", "emoji", "hashtags", "links",
                     "questions", "exclamations"):
            groups.append(FeatureGroup(f"metadata_features.{field}_{stat}",
                                       _scalar(f"{field}_{stat}")))
    groups += [
        FeatureGroup("metadata_features.tags_count", _scalar("tags_count")),
        FeatureGroup("metadata_features.tags_mean_chars", _scalar("tags_mean_chars")),
        FeatureGroup("metadata_features.duration_s", _scalar("duration_s")),
    ]
    for key in ("width", "height", "aspect_ratio", "is_vertical", "fps", "has_audio"):
        groups.append(FeatureGroup(f"metadata_features.{key}", _when("video_probed", key)))
    groups += [
        FeatureGroup("metadata_features.publish_weekday",
                     _when("publish_known", "publish_weekday")),
        FeatureGroup("metadata_features.publish_hour", _when("publish_known", "publish_hour")),
        FeatureGroup("metadata_features.category_id", _scalar("category_id", unknown=-1)),
        FeatureGroup("metadata_features.language_index", _scalar("language_index", unknown=-1)),
        FeatureGroup("metadata_features.log_channel_followers",
                     _scalar("channel_follower_count", unknown=-1, log1p=True)),
    ]
    return groups


def _declared() -> tuple[FeatureGroup, ...]:
    video: dict[str, tuple[str, ...]] = {
        "shot_detection": ("cuts_per_minute", "mean_shot_length_s", "n_cuts"),
        "color_stats": ("brightness_mean", "contrast_mean", "saturation_mean",
                        "colorfulness_mean", "warm_cool_balance"),
        "motion": ("motion_mean", "camera_motion_mean", "object_motion_mean", "static_ratio"),
        "loudness": ("integrated_lufs", "loudness_range_lu", "true_peak_dbtp"),
        "audio_features": ("tempo_bpm", "onset_rate_per_s", "rms_dbfs_mean", "silence_ratio",
                           "spectral_centroid_mean"),
        "speech_activity": ("speech_ratio",),
        "faces": ("frames_with_faces_ratio", "mean_face_count", "mean_screen_share"),
    }
    groups = _metadata_groups() + [
        FeatureGroup("text_embeddings.title_empty", _scalar("title_empty")),
        FeatureGroup("text_embeddings.description_empty", _scalar("description_empty")),
        FeatureGroup("text_embeddings.title_embedding", _vector("title_embedding"),
                     EMBEDDING_DIM),
        FeatureGroup("text_embeddings.description_embedding", _vector("description_embedding"),
                     EMBEDDING_DIM),
    ]
    for component, keys in video.items():
        groups += [FeatureGroup(f"{component}.{k}", _scalar(k)) for k in keys]
    groups.append(FeatureGroup("faces.first_seconds_face_ratio", _first_seconds_face_ratio))
    return tuple(groups)


TIER0_GROUPS: tuple[FeatureGroup, ...] = _declared()
AGE_FEATURE = "run.age_days"
"""The video's age when its counts are asked for: the label's age in training, the horizon
when serving (default :data:`DEFAULT_HORIZON_DAYS`)."""
DEFAULT_HORIZON_DAYS = 30.0

TIER0_FEATURES: tuple[str, ...] = tuple(
    n for g in TIER0_GROUPS for n in g.names()
) + (AGE_FEATURE,)
"""Every feature name, in vector order."""


def tier0_vector(
    components: Mapping[str, Arrays], *, age_days: float | None
) -> np.ndarray:
    """float32 ``[len(TIER0_FEATURES)]`` from the Tier-0 artifacts; NaN where unknown.

    ``components`` maps a component name to its NPZ arrays (``{}`` for an ``empty`` artifact; a
    component not in the mapping counts as not computed). This is the only place a feature
    vector is made — for training rows and for a served run alike.
    """
    out: list[float] = []
    for group in TIER0_GROUPS:
        arrays = components.get(group.component) or {}
        values = list(group.extract(arrays)) if arrays else [math.nan] * group.width
        if len(values) != group.width:
            raise ValueError(f"{group.name}: {len(values)} values, expected {group.width}")
        out.extend(values)
    out.append(math.nan if age_days is None else float(age_days))
    return np.asarray(out, dtype=np.float32)


_INDEX = {name: i for i, name in enumerate(TIER0_FEATURES)}


def feature_indices(names: Sequence[str]) -> np.ndarray:
    """Positions of ``names`` in :data:`TIER0_FEATURES`; ModelNotFound for an unknown name."""
    unknown = [n for n in names if n not in _INDEX]
    if unknown:
        raise ModelNotFound(
            f"the predictor was trained on features this version does not declare: {unknown[:5]}"
        )
    return np.array([_INDEX[n] for n in names], dtype=np.int64)


def model_input(vectors: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """The columns a model was trained on (``names``, its card's list) of Tier-0 ``vectors``."""
    return np.ascontiguousarray(np.atleast_2d(vectors)[:, feature_indices(names)], np.float32)


def group_of(feature: str) -> str:
    """``text_embeddings.title_embedding[17]`` → ``text_embeddings.title_embedding``."""
    return feature.split("[", 1)[0]


def check_predictor_served(
    enabled: Sequence[str],
    mapping: Mapping[str, str],
    repository: Path,
    *,
    client: InferenceClient | None = None,
) -> None:
    """The second rule at run creation: no forecast is promised without a trained model.

    ``mapping`` is the run's ``component → "name:version"``; the version must have built
    (trained) weights in ``repository`` and, with ``client``, be served. Otherwise
    :class:`ModelNotFound` (``model_not_found``) — never an empty forecast later.
    """
    if "popularity_prediction" not in enabled:
        return
    from trendflow.triton.mapping import resolve

    try:
        resolve(["popularity_prediction"], mapping, repository, client=client)
    except ModelNotFound as exc:
        raise ModelNotFound(
            "the forecast needs a trained popularity predictor, and none is served: "
            f"{exc.message} (train it with `trendflow models build --model "
            "popularity_predictor` or `trendflow predictor train`)",
            component="popularity_prediction",
        ) from exc


__all__ = [
    "check_predictor_served",
    "AGE_FEATURE",
    "DEFAULT_HORIZON_DAYS",
    "TIER0_COMPONENTS",
    "TIER0_FEATURES",
    "TIER0_GROUPS",
    "FeatureGroup",
    "feature_indices",
    "group_of",
    "model_input",
    "tier0_vector",
]
