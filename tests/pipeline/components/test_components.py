"""Component behaviour on arrays built in the test: contract rules, measures, chunk independence."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from tests.pipeline.components._harness import make_context, run_on_audio, run_on_frames
from trendflow.contracts.arrays import check_arrays
from trendflow.errors import ComponentError, ComponentNotFound, InvalidProfile, MissingFrameIndices
from trendflow.pipeline.components import all_components, get_component
from trendflow.pipeline.components.base import Component, Resources, frame_outputs
from trendflow.pipeline.components.color_stats import ColorStats
from trendflow.pipeline.components.loudness import Loudness, k_weighted
from trendflow.pipeline.components.metadata_features import UNKNOWN, MetadataFeatures
from trendflow.pipeline.components.motion import STATIC_THRESHOLD, Motion
from trendflow.pipeline.components.shot_detection import ShotDetection
from trendflow.pipeline.types import VideoMeta

FRAME_COMPONENTS = (ShotDetection, ColorStats, Motion)
CANONICAL = {
    "metadata_features", "shot_detection", "color_stats", "motion", "loudness", "audio_features",
}


def texture(seed: int, h: int = 72, w: int = 128) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)


def scenes(n: int, cuts: list[int]) -> np.ndarray:
    return np.stack([texture(int(np.searchsorted(cuts, i, side="right"))) for i in range(n)])


# -- registry and declarations ------------------------------------------------------------------


def test_registry_has_the_canonical_cpu_components() -> None:
    comps = all_components()
    assert set(comps) >= CANONICAL
    for name, cls in comps.items():
        assert name == cls.NAME
        assert get_component(name) is cls


def test_unknown_component_is_a_not_found_error() -> None:
    with pytest.raises(ComponentNotFound) as info:
        get_component("no_such_component")
    assert info.value.code == "component_not_found"
    assert "metadata_features" in info.value.message  # says what exists


@pytest.mark.parametrize("name", sorted(CANONICAL))
def test_declarations_are_complete_and_instances_pickle(name: str) -> None:
    cls = get_component(name)
    assert cls.SCHEMA_VERSION >= 1 and cls.PRODUCER_VERSION
    assert cls.TIER == 0
    assert isinstance(cls.RESOURCES, Resources) and cls.RESOURCES.gpu_memory_mb == 0
    assert "measured" in (cls.__doc__ or ""), "RESOURCES docstring says how they were measured"
    specs = cls.outputs()
    assert all(spec.description for spec in specs.values())
    if cls.frame_based():
        assert cls.SAMPLING is not None
        assert frame_outputs().items() <= specs.items()
    clone = pickle.loads(pickle.dumps(cls()))
    assert clone.params == cls().params


def test_unknown_params_are_refused() -> None:
    with pytest.raises(InvalidProfile, match="min_contnt"):
        ShotDetection(min_contnt=3)


@pytest.mark.parametrize("cls", FRAME_COMPONENTS)
def test_frame_component_without_indices_raises(cls: type[Component]) -> None:
    ctx = make_context(cls, n_frames=24)
    ctx.frame_indices = None
    ctx.timestamps_s = None
    with pytest.raises(MissingFrameIndices) as info:
        cls().setup(ctx)
    assert info.value.code == "missing_frame_indices"
    assert cls.NAME in info.value.message


@pytest.mark.parametrize("cls", FRAME_COMPONENTS)
def test_results_do_not_depend_on_chunking(cls: type[Component]) -> None:
    frames = scenes(60, [20, 41])
    frames[30:] = np.roll(frames[30:], 3, axis=2)  # some motion too
    whole = run_on_frames(cls(), frames, chunk_size=60)
    pieces = run_on_frames(cls(), frames, chunk_size=7)
    # The union may hold frames of other components (here every other frame extra).
    assert whole.arrays.keys() == pieces.arrays.keys()
    for key in whole.arrays:
        np.testing.assert_array_equal(whole.arrays[key], pieces.arrays[key], err_msg=key)
    assert check_arrays(cls.outputs(), whole.arrays, where=cls.NAME) == []


# -- shot_detection -----------------------------------------------------------------------------


def test_hard_cuts_found_and_a_fade_to_black_ignored() -> None:
    n = 96
    frames = scenes(n, [30, 60]).astype(np.float32)
    fade = np.linspace(1.0, 0.0, 24)[:, None, None, None]  # 2 s fade to black at the end
    frames[72:] = frames[72:] * fade
    res = run_on_frames(ShotDetection(), frames.astype(np.uint8), chunk_size=10)
    assert res.arrays["cut_frame_indices"].tolist() == [30, 60]
    assert res.arrays["shot_lengths_s"].tolist() == pytest.approx([2.5, 2.5, 3.0])


def test_strobe_cuts_closer_than_min_shot_are_merged() -> None:
    frames = scenes(48, [20, 22])
    res = run_on_frames(ShotDetection(min_shot_s=0.5), frames)
    assert res.arrays["cut_frame_indices"].tolist() == [20]


# -- color_stats --------------------------------------------------------------------------------


def test_colour_measures_of_solid_frames() -> None:
    red = np.zeros((24, 36, 64, 3), np.uint8)
    red[..., 0] = 255
    grey = np.full((24, 36, 64, 3), 128, np.uint8)
    r = run_on_frames(ColorStats(), red).arrays
    g = run_on_frames(ColorStats(), grey).arrays
    assert r["warm_fraction"].min() == 1.0 and r["cool_fraction"].max() == 0.0
    assert float(r["warm_cool_balance"]) == 1.0
    assert r["palette_rgb"][0, 0].tolist() == pytest.approx([255, 0, 0], abs=3)
    assert r["palette_share"][0].tolist() == pytest.approx([1, 0, 0, 0, 0])
    # No spread, mean (rg, yb) = (255, 127.5): M = 0.3·|μ|.
    assert float(r["colorfulness_mean"]) == pytest.approx(0.3 * np.hypot(255, 127.5), rel=1e-4)
    assert float(g["colorfulness_mean"]) == pytest.approx(0.0, abs=1e-6)
    assert float(g["saturation_mean"]) == 0.0
    assert float(g["brightness_mean"]) == pytest.approx(128 / 255, abs=1e-3)
    assert float(g["contrast_mean"]) == pytest.approx(0.0, abs=1e-6)
    assert r["frame_indices"].tolist() == [0, 6, 12, 18]  # 2 fps on the 12 fps timeline


def test_palette_finds_the_two_halves() -> None:
    frame = np.zeros((36, 64, 3), np.uint8)
    frame[:, :16] = (20, 40, 200)  # a quarter blue
    frame[:, 16:] = (240, 200, 30)  # three quarters yellow
    res = run_on_frames(ColorStats(), np.stack([frame] * 12)).arrays
    share = res["video_palette_share"]
    assert share[:2].tolist() == pytest.approx([0.75, 0.25], abs=0.03)
    assert res["video_palette_rgb"][0].tolist() == pytest.approx([240, 200, 30], abs=6)


# -- motion -------------------------------------------------------------------------------------


def test_camera_pan_and_object_motion_are_separated() -> None:
    big = texture(3, 72, 512)
    pan = np.stack([big[:, 2 * i : 2 * i + 128] for i in range(24)])  # 2 px/frame to the left
    still = np.stack([texture(4)] * 24)
    obj = still.copy()
    for i in range(24):  # a small square moving right over a still background
        obj[i, 20:36, 10 + 3 * i : 26 + 3 * i] = 255
    p = run_on_frames(Motion(), pan).arrays
    o = run_on_frames(Motion(), obj).arrays
    s = run_on_frames(Motion(), still).arrays
    assert float(s["motion_max"]) < 1e-3
    # 2 px per frame at 72 px frame height, 12 fps → 1/3 frame height per second.
    assert float(np.median(p["camera_dx"][1:])) == pytest.approx(-2 * 12 / 72, rel=0.15)
    assert float(p["object_motion_mean"]) < 0.3 * float(p["camera_motion_mean"])
    # The still camera reads as still (DIS leaves a sub-pixel residue, ~0.04 px per frame,
    # where Farnebäck left none), and the square's motion is the object's.
    assert float(o["camera_motion_mean"]) < 0.5 * STATIC_THRESHOLD
    assert float(o["object_motion_mean"]) > 3 * float(o["camera_motion_mean"])


# -- metadata_features --------------------------------------------------------------------------


def test_metadata_counts_and_publish_time() -> None:
    meta = VideoMeta(
        title="WOW this is Great!! 2024? 🔥🔥 #shorts",
        description="Links: https://example.com and www.example.org #a #b",
        tags=("cats", "funny cats"),
        published_at=datetime(2024, 3, 9, 23, 30, tzinfo=timezone(timedelta(hours=-3))),
    )
    comp = MetadataFeatures()
    comp.setup(make_context(MetadataFeatures, n_frames=72, meta=meta, size=(1080, 1920)))
    a = comp.reduce([]).arrays
    assert check_arrays(MetadataFeatures.outputs(), a, where="metadata") == []
    assert int(a["title_chars"]) == len(meta.title)
    assert int(a["title_emoji"]) == 2 and int(a["title_hashtags"]) == 1
    assert int(a["title_exclamations"]) == 2 and int(a["title_questions"]) == 1
    assert int(a["title_digits"]) == 4
    assert float(a["title_caps_ratio"]) == pytest.approx(4 / 20)
    assert int(a["description_links"]) == 2 and int(a["description_hashtags"]) == 2
    assert int(a["tags_count"]) == 2 and float(a["tags_mean_chars"]) == 7.0
    assert bool(a["is_vertical"]) and float(a["aspect_ratio"]) == pytest.approx(0.5625)
    # 23:30 at UTC-3 is Sunday 02:30 UTC.
    assert bool(a["publish_known"]) and int(a["publish_weekday"]) == 6
    assert int(a["publish_hour"]) == 2
    assert not any(arr.dtype.kind in "US" for arr in a.values()), "no raw text is stored"


def test_unknown_publish_time_uses_the_sentinel() -> None:
    comp = MetadataFeatures()
    comp.setup(make_context(MetadataFeatures, n_frames=72, meta=VideoMeta(title="")))
    a = comp.reduce([]).arrays
    assert not bool(a["publish_known"])
    assert int(a["publish_weekday"]) == UNKNOWN == int(a["publish_hour"])
    assert float(a["title_caps_ratio"]) == 0.0 and int(a["title_words"]) == 0
    _ = UTC


# -- loudness -----------------------------------------------------------------------------------


def test_integrated_loudness_matches_pyloudnorm() -> None:
    import pyloudnorm

    rng = np.random.default_rng(1)
    rate = 48_000
    t = np.arange(20 * rate) / rate
    envelope = np.where((t % 10) < 5, 0.3, 0.075)  # 5 s stretches 12 dB apart
    x = (rng.normal(0, 1, len(t)) * envelope).clip(-1, 1).astype(np.float32)
    res = run_on_audio(Loudness(), {rate: x}, 20.0).arrays
    reference = pyloudnorm.Meter(rate).integrated_loudness(x.astype(np.float64))
    assert float(res["integrated_lufs"]) == pytest.approx(reference, abs=0.05)
    assert float(res["loudness_range_lu"]) == pytest.approx(12.0, abs=1.5)


def test_piecewise_filtering_and_oversampling_equal_the_whole_track() -> None:
    from scipy.signal import resample_poly

    from trendflow.pipeline.components.loudness import segment_energies, true_peak_dbtp

    rate = 48_000
    x = np.random.default_rng(2).normal(0, 0.2, 25 * rate + 123).astype(np.float32)
    whole = k_weighted(x)[: 250 * 4800].reshape(250, 4800)
    np.testing.assert_allclose(segment_energies(x), (whole * whole).sum(axis=1), rtol=1e-9)
    peak = 20 * np.log10(np.abs(resample_poly(x.astype(np.float64), 4, 1)).max())
    assert true_peak_dbtp(x) == pytest.approx(peak, abs=1e-9)


def test_true_peak_sees_the_peak_between_samples() -> None:
    rate = 48_000
    n = np.arange(4 * rate)
    # A sine at fs/4 sampled 45° off its crests: samples reach 0.707·A, the wave reaches A.
    x = (0.5 * np.sin(2 * np.pi * n / 4 + np.pi / 4)).astype(np.float32)
    res = run_on_audio(Loudness(), {rate: x}, 4.0).arrays
    assert float(res["sample_peak_dbfs"]) == pytest.approx(20 * np.log10(0.5 * 0.7071), abs=0.05)
    assert float(res["true_peak_dbtp"]) == pytest.approx(20 * np.log10(0.5), abs=0.3)


def test_digital_silence_reads_the_floor() -> None:
    res = run_on_audio(Loudness(), {48_000: np.zeros(48_000 * 5, np.float32)}, 5.0).arrays
    assert float(res["integrated_lufs"]) == -120.0
    assert float(res["loudness_range_lu"]) == 0.0


def test_audio_shorter_than_a_block_is_an_error() -> None:
    with pytest.raises(ComponentError, match="shorter than one"):
        run_on_audio(Loudness(), {48_000: np.zeros(1000, np.float32)}, 0.02)


def test_audio_features_on_silence() -> None:
    res = run_on_audio(
        get_component("audio_features")(), {16_000: np.zeros(16_000 * 6, np.float32)}, 6.0
    ).arrays
    assert float(res["silence_ratio"]) == 1.0
    assert float(res["tempo_bpm"]) == 0.0


def test_schema_md_documents_every_key_and_is_current() -> None:
    from trendflow.contracts.schemas import repo_schemas_dir
    from trendflow.pipeline.components.registry import REGENERATE, catalog_markdown

    text = (repo_schemas_dir() / "SCHEMA.md").read_text(encoding="utf-8")
    assert text == catalog_markdown(), f"schemas/SCHEMA.md is stale; run: {REGENERATE}"
    for name, cls in all_components().items():
        assert f"## `{name}`" in text
        for key, spec in cls.outputs().items():
            assert f"| `{key}` | {spec.dtype} |" in text


def test_audio_features_do_not_depend_on_the_piece_size(monkeypatch: pytest.MonkeyPatch) -> None:
    from trendflow.pipeline.components import audio_features

    rate = 16_000
    t = np.arange(20 * rate) / rate
    rng = np.random.default_rng(3)
    y = (0.2 * np.sin(2 * np.pi * 440 * t) * (t % 0.5 < 0.1) + rng.normal(0, 0.01, len(t)))
    samples = {rate: y.astype(np.float32)}
    big = run_on_audio(audio_features.AudioFeatures(), samples, 20.0).arrays
    monkeypatch.setattr(audio_features, "BLOCK_FRAMES", 97)
    small = run_on_audio(audio_features.AudioFeatures(), samples, 20.0).arrays
    for key, value in big.items():
        np.testing.assert_allclose(small[key], value, rtol=1e-6, atol=1e-9, err_msg=key)
    assert float(big["tempo_bpm"]) == pytest.approx(120.0, abs=2.0)  # a beep every 0.5 s


def test_seed_resources_are_the_declared_ones() -> None:
    """The scheduler reads the seed; the components declare the same figures."""
    import json
    from pathlib import Path

    import trendflow

    seed = Path(trendflow.__file__).parent / "db" / "seed" / "seed.json"
    entries = json.loads(seed.read_text(encoding="utf-8"))["components"]
    # One set of figures: the database is seeded with exactly what each class declares.
    for name in sorted(entries):
        cls = get_component(name)
        res = entries[name]["resources"]
        assert res["memory_per_task"] == cls.RESOURCES.memory_mb, name
        assert float(res["cpu_cores_per_task"]) == cls.RESOURCES.cpus, name
        assert res["gpu_memory_per_task"] == cls.RESOURCES.gpu_memory_mb, name
        # Measured figures say so; a GPU figure is never presented as measured before it is.
        assert ("bench_components" in res["source"]) == (name in CANONICAL), name
