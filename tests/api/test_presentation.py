"""The page's JSON of a 20-minute video: every series bucketed to ≤ MAX_POINTS, under 1 MB in
all, aligned across the keys of a dimension; the NPZ itself keeps every row."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from trendflow.api.presentation import MAX_POINTS, bucket_starts, component_json, downsample
from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.npz import decode_npz, encode_npz
from trendflow.contracts.schemas import load_component_schema

DURATION_S = 20 * 60
# Sizes of each varying dimension for a 20-minute video (analysis timeline at 12 fps).
SAMPLING_FPS = {"shot_detection": 12, "motion": 12, "color_stats": 2, "faces": 2,
                "face_emotion": 2, "ocr_text": 1, "image_embeddings": 1}
DIMS = {"n_windows": 10 * DURATION_S, "n_faces": 4 * DURATION_S, "n_boxes": 3 * DURATION_S,
        "n_text_bytes": 30_000, "n_segments": 400, "n_beats": 2 * DURATION_S, "n_cuts": 600,
        "n_shots": 601, "n_faces_emotion": 4 * DURATION_S, "embedding_dim": 512}
COMPONENTS = ["shot_detection", "motion", "color_stats", "faces", "face_emotion", "ocr_text",
              "loudness", "audio_features", "speech_activity", "transcript", "metadata_features",
              "text_embeddings"]


def _size(component: str, dim: str) -> int:
    if dim == "n_frames":
        return SAMPLING_FPS[component] * DURATION_S
    if component == "speech_activity" and dim == "n_windows":
        return DURATION_S * 16_000 // 512
    return DIMS[dim]


def _arrays(component: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    schema = load_component_schema(component)
    out: dict[str, np.ndarray] = {}
    for key, spec in schema.specs.items():
        shape = tuple(d if isinstance(d, int) else _size(component, d) for d in spec.shape)
        dtype = np.dtype(spec.dtype)
        if key == "frame_indices":
            step = 12 // SAMPLING_FPS[component]
            value = np.arange(shape[0], dtype=np.int64) * step
        elif key in ("timestamps_s", "short_term_times_s", "beat_times_s", "cut_timestamps_s"):
            value = np.sort(rng.uniform(0, DURATION_S, shape)).astype(dtype)
        elif dtype.kind in "US":
            value = np.full(shape, "x" * min(dtype.itemsize // 4, 8), dtype=dtype)
        elif dtype.kind == "b":
            value = np.asarray(rng.random(shape) < 0.5)
        elif dtype.kind in "iu":
            value = rng.integers(0, 200, shape).astype(dtype)
        else:
            value = rng.standard_normal(shape).astype(dtype)
        out[key] = value
    return out


def _npz(component: str, arrays: dict[str, np.ndarray]) -> bytes:
    schema = load_component_schema(component)
    identity = RunIdentity.create(platform_id="youtube", video_id="dQw4w9WgXcQ",
                                  config_hash="0" * 64)
    return encode_npz(identity, component=component, schema_version=schema.schema_version,
                      producer_version=schema.producer_version, model=None, status="ok",
                      empty_reason=None, arrays=arrays, specs=schema.specs,
                      created_at=datetime(2026, 1, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def twenty_minutes() -> dict[str, tuple[dict[str, np.ndarray], bytes]]:
    rng = np.random.default_rng(7)
    built = {}
    for name in COMPONENTS:
        arrays = _arrays(name, rng)
        built[name] = (arrays, _npz(name, arrays))
    return built


def test_a_twenty_minute_result_page_is_under_one_megabyte(
    twenty_minutes: dict[str, tuple[dict[str, np.ndarray], bytes]],
) -> None:
    docs = {name: component_json(name, data) for name, (_, data) in twenty_minutes.items()}
    size = len(json.dumps(docs, separators=(",", ":")).encode())
    full = sum(len(json.dumps(component_json(name, data, max_points=10**9, max_cells=10**12)))
               for name, (_, data) in twenty_minutes.items())
    print(f"page JSON of a 20-minute video: {size} bytes (unbucketed: {full})")
    assert size < 1_000_000, f"{size} bytes of JSON (unbucketed: {full})"
    assert full > 3 * size  # the case is big enough for the bucketing to matter
    for name, doc in docs.items():
        for key, item in doc["keys"].items():
            value = item["value"]
            if isinstance(value, list) and key != "text_utf8":
                assert len(value) <= MAX_POINTS, (name, key, len(value))
    # the NPZ keeps full resolution
    arrays, data = twenty_minutes["motion"]
    assert decode_npz(data).arrays["motion_magnitude"].shape == (12 * DURATION_S,)
    assert docs["motion"]["keys"]["motion_magnitude"]["shape"] == [12 * DURATION_S]
    note = docs["motion"]["keys"]["motion_magnitude"]["downsampled"]
    assert note["from"] == 12 * DURATION_S and note["method"] == "mean"
    assert 1000 <= note["to"] <= MAX_POINTS  # still finer than a chart's pixels
    assert len(docs["motion"]["keys"]["timestamps_s"]["value"]) == note["to"]
    # text bytes are never cut: the transcript still decodes whole
    assert len(docs["transcript"]["keys"]["text_utf8"]["value"]) == DIMS["n_text_bytes"]


def test_buckets_keep_a_dimension_aligned_and_curves_at_their_level() -> None:
    n = 10_000
    t = np.arange(n) / 12.0
    arrays = {
        "timestamps_s": t,
        "frame_indices": np.arange(n, dtype=np.int64),
        "level": np.where(t < t[n // 2], 1.0, 3.0).astype(np.float32),
        "boxes": np.arange(16, dtype=np.float32).reshape(4, 4),
        "face_frame": np.array([0, 4999, 5000, 9999], dtype=np.int32),
    }
    specs = load_component_schema("faces").specs  # n_frames / n_faces / unit "row"
    specs = {"timestamps_s": specs["timestamps_s"], "frame_indices": specs["frame_indices"],
             "level": specs["screen_share"], "boxes": specs["face_boxes"],
             "face_frame": specs["face_frame"]}
    shown, notes = downsample(arrays, specs, max_points=100, max_cells=10**6)
    starts = bucket_starts(n, 100)
    assert shown["timestamps_s"].shape == (100,) and shown["level"].shape == (100,)
    assert np.array_equal(shown["frame_indices"], starts)
    # each bucket's mean time lies inside its own rows
    assert np.all(shown["timestamps_s"] >= t[starts])
    assert np.all(shown["timestamps_s"] < t[starts] + 100 / 12)
    assert set(np.round(shown["level"], 6)) == {1.0, 3.0}  # a step stays a step
    assert notes["level"]["method"] == "mean" and notes["frame_indices"]["method"] == "first"
    # n_faces (here 4 rows) is not cut, but its rows point into the bucketed frames
    assert np.array_equal(shown["boxes"], arrays["boxes"])
    assert shown["face_frame"].tolist() == [0, 49, 50, 99]
    assert notes["face_frame"]["rows_of"] == "n_frames"
