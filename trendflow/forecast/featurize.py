"""Tier-0 rows of labelled videos, computed by the components themselves.

A labelled video without a file (the shared dataset has none) is a metadata-only run:
``metadata_features`` and ``text_embeddings`` run on its metadata through their own code — the
embeddings come from the same served ``text_embedder`` model a real run calls — and the
video-derived components are absent (their features are NaN). :func:`tier0_vector` then builds
the row exactly as the ``popularity_prediction`` component does for a served run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from trendflow.contracts.identity import SAMPLING_POLICY_VERSION
from trendflow.forecast.labels import LabelledVideo
from trendflow.forecast.tier0 import TIER0_FEATURES, tier0_vector
from trendflow.pipeline.components.base import Component
from trendflow.pipeline.components.metadata_features import MetadataFeatures, metadata_only_video
from trendflow.pipeline.components.model_backed import TEXT_EMBEDDER
from trendflow.pipeline.components.text_embeddings import TextEmbeddings
from trendflow.pipeline.execution import build_context
from trendflow.pipeline.types import Timeline, VideoMeta
from trendflow.triton.batching import BatchingClient
from trendflow.triton.client import InferenceClient

log = logging.getLogger(__name__)

METADATA_ONLY_COMPONENTS: tuple[str, ...] = ("metadata_features", "text_embeddings")
"""What a labelled video without a file can compute."""


@dataclass(frozen=True, slots=True)
class FeatureTable:
    """Tier-0 rows (float32 ``[n, len(TIER0_FEATURES)]``) with their labels and groups."""

    video_ids: tuple[str, ...]
    channels: tuple[str, ...]
    features: np.ndarray
    views: np.ndarray  # int64 [n]
    likes: np.ndarray

    def targets(self) -> np.ndarray:
        """float64 ``[n, 2]``: log1p(views), log1p(likes)."""
        return np.log1p(np.stack([self.views, self.likes], axis=1).astype(np.float64))

    def save(self, path: str) -> None:
        np.savez(path, video_ids=np.array(self.video_ids), channels=np.array(self.channels),
                 features=self.features, views=self.views, likes=self.likes,
                 feature_names=np.array(TIER0_FEATURES))

    @classmethod
    def load(cls, path: str) -> FeatureTable:
        with np.load(path, allow_pickle=False) as data:
            if tuple(data["feature_names"]) != TIER0_FEATURES:
                raise ValueError(f"{path} was featurized with another Tier-0 feature list")
            return cls(tuple(data["video_ids"]), tuple(data["channels"]), data["features"],
                       data["views"], data["likes"])


def _run(component: Component, meta: VideoMeta, services: Mapping[str, object],
         model: str | None) -> dict[str, np.ndarray]:
    timeline = Timeline(fps=12.0, width=0, height=0, n_frames=0,
                        sampling_policy_version=SAMPLING_POLICY_VERSION)
    ctx = build_context(type(component), info=metadata_only_video(meta), meta=meta,
                        timeline=timeline, audio=None, model=model, services=services)
    component.setup(ctx)
    result = component.reduce([])
    return result.arrays  # {} for an empty result, as a dependant receives it


def metadata_components(
    meta: VideoMeta, client: InferenceClient, *, text_model: str = TEXT_EMBEDDER
) -> dict[str, dict[str, np.ndarray]]:
    """``{component: arrays}`` of the metadata-only Tier-0 components for one video."""
    services = {"triton": client}
    return {
        "metadata_features": _run(MetadataFeatures(), meta, services, None),
        "text_embeddings": _run(TextEmbeddings(), meta, services, text_model),
    }


def featurize(
    videos: Sequence[LabelledVideo],
    make_client: Callable[[], InferenceClient],
    *,
    text_model: str = TEXT_EMBEDDER,
    workers: int = 16,
) -> FeatureTable:
    """Tier-0 rows of ``videos`` from their metadata (see the module docstring).

    ``workers`` videos are computed at once; their model requests share one
    :class:`~trendflow.triton.batching.BatchingClient` (as on the GPU actors), which merges
    them into fuller server calls — ``make_client`` builds its per-thread connections.
    """
    client = BatchingClient(make_client, max_wait_s=0.002, max_in_flight=2)
    done = 0

    def row(video: LabelledVideo) -> np.ndarray:
        nonlocal done
        comps = metadata_components(video.meta, client, text_model=text_model)
        done += 1
        if done % 500 == 0:
            log.info("featurized %d/%d labelled videos", done, len(videos))
        return tier0_vector(comps, age_days=video.age_days)

    try:
        with ThreadPoolExecutor(max(1, workers), thread_name_prefix="featurize") as pool:
            rows = list(pool.map(row, videos))
    finally:
        client.close()
    features = np.stack(rows) if rows else np.zeros((0, len(TIER0_FEATURES)), np.float32)
    return FeatureTable(
        video_ids=tuple(v.video_id for v in videos),
        channels=tuple(v.channel for v in videos),
        features=features,
        views=np.array([v.views for v in videos], np.int64),
        likes=np.array([v.likes for v in videos], np.int64),
    )


__all__ = ["METADATA_ONLY_COMPONENTS", "FeatureTable", "featurize", "metadata_components"]
