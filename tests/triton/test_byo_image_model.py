"""Bring your own image model: a real CNN exported to ONNX, registered with the CLI, served by a
second real Triton server on a temporary repository, and used by ``image_embeddings``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.fixtures.media import MediaLibrary
from tests.pipeline.components._harness import make_context, union_chunks
from tests.triton.test_components import analyse
from trendflow.cli import main
from trendflow.errors import InputError
from trendflow.pipeline.components.base import select_chunk
from trendflow.pipeline.components.image_embeddings import ImageEmbeddings
from trendflow.triton.byo import add_image_model
from trendflow.triton.client import TritonClient
from trendflow.triton.server import free_port, start_server, stop_server

EMBEDDING_DIM = 48
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
PREPROCESS = {
    "size": [64, 64],
    "resize": "shorter_side_center_crop",
    "interpolation": "bilinear",
    "mean": list(MEAN),
    "std": list(STD),
    "layout": "NCHW",
    "l2_normalize": True,
}


def export_cnn(path: Path) -> None:
    """A small residual CNN (fixed seed, untrained) exported to ONNX with a dynamic batch."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, ch: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(ch)
            self.conv2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(ch)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(x + self.bn2(self.conv2(y)))

    class TinyResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(
                nn.Conv2d(3, 16, 5, stride=2, padding=2, bias=False), nn.BatchNorm2d(16),
                nn.ReLU(), nn.MaxPool2d(2),
            )
            self.blocks = nn.Sequential(Block(16), Block(16))
            self.head = nn.Linear(16, EMBEDDING_DIM)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))

    torch.manual_seed(0)
    model = TinyResNet().eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    torch.onnx.export(
        model, (torch.zeros(1, 3, 64, 64),), str(path), input_names=["pixels"],
        output_names=["features"], dynamic_axes={"pixels": {0: "n"}, "features": {0: "n"}},
        opset_version=17, dynamo=False,
    )


def reference_embeddings(onnx_path: Path, frames: np.ndarray) -> np.ndarray:
    """In-process ONNX Runtime with the preprocessing written out independently."""
    import onnxruntime as ort

    rows = []
    for frame in frames:
        h, w = frame.shape[:2]
        s = 64 / min(h, w)
        nh, nw = max(64, round(h * s)), max(64, round(w * s))
        img = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)
        top, left = (nh - 64) // 2, (nw - 64) // 2
        img = img[top : top + 64, left : left + 64].astype(np.float32) / 255.0
        rows.append(((img - np.array(MEAN, np.float32)) / np.array(STD, np.float32)).transpose(
            2, 0, 1))
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"pixels": np.stack(rows).astype(np.float32)})[0]
    return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def byo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TritonClient, Path]]:
    """A second Triton server whose repository holds only the model added by the CLI."""
    root = tmp_path_factory.mktemp("byo")
    onnx_path = root / "tiny_resnet.onnx"
    export_cnn(onnx_path)
    spec = root / "preprocess.json"
    spec.write_text(json.dumps(PREPROCESS))
    repo = root / "triton_repo"
    repo.mkdir()
    code = main(["models", "add-image-model", str(onnx_path), "--name", "tiny_resnet",
                 "--preprocess", str(spec), "--repository", str(repo), "--max-batch-size", "4"])
    assert code == 0
    work = root / "server"
    info = start_server(repo, work, http_port=free_port(), grpc_port=free_port(),
                        metrics_port=free_port())
    client = TritonClient(info.grpc_url, backoff_s=0.2)
    try:
        yield client, onnx_path
    finally:
        client.close()
        stop_server(work)


def test_served_embeddings_equal_in_process_onnx(
    byo_server: tuple[TritonClient, Path],
) -> None:
    from skimage import data

    client, onnx_path = byo_server
    assert client.model_config("tiny_resnet", "1")["output"][0]["dims"] in (
        [str(EMBEDDING_DIM)], [EMBEDDING_DIM])
    # 8 s of a 320×568 timeline: the astronaut drifting right (1 fps → 8 frames, batches of 4).
    base = cv2.resize(data.astronaut(), (320, 320))
    frames = np.zeros((36 + 60, 320, 568, 3), np.uint8)
    for i in range(len(frames)):
        frames[i, :, 4 * (i % 60) : 4 * (i % 60) + 320] = base
    comp = ImageEmbeddings()
    ctx = make_context(ImageEmbeddings, n_frames=len(frames), size=(568, 320))
    ctx.model = "tiny_resnet:1"
    ctx.services = {"triton": client}
    comp.setup(ctx)
    assert ctx.frame_indices is not None
    partials = [comp.map(select_chunk(c, ctx.frame_indices))
                for c in union_chunks(frames, ctx.frame_indices, 12.0, 5)]
    result = comp.reduce(partials)
    emb = result.arrays["embeddings"]
    assert emb.shape == (8, EMBEDDING_DIM)
    ref = reference_embeddings(onnx_path, frames[ctx.frame_indices])
    assert float(np.abs(emb - ref).max()) < 1e-4
    assert not np.allclose(emb[0], emb[4], atol=1e-3)  # different frames, different vectors
    video = result.arrays["video_embedding"]
    assert abs(float(np.linalg.norm(video)) - 1.0) < 1e-5


async def test_image_embeddings_run_validates(
    byo_server: tuple[TritonClient, Path], media: MediaLibrary, tmp_path: Path
) -> None:
    client, _ = byo_server
    manifest, arrays = await analyse(
        media.path("face"), ["image_embeddings"], tmp_path, client,
        mapping={"image_embeddings": "tiny_resnet:1"},
    )
    rec = manifest.components["image_embeddings"]
    assert rec.status == "ok" and rec.model == "tiny_resnet:1"
    assert arrays["image_embeddings"]["embeddings"].shape == (6, EMBEDDING_DIM)


def test_add_rejects_bad_specs_and_changed_dimension(tmp_path: Path) -> None:
    onnx_path = tmp_path / "m.onnx"
    export_cnn(onnx_path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(PREPROCESS | {"layout": "CHW"}))
    repo = tmp_path / "repo"
    with pytest.raises(InputError, match="layout"):
        add_image_model(onnx_path, bad, repo, name="m")
    assert not (repo / "m").exists()  # nothing half-written

    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(PREPROCESS | {"layout": "NHWC"}))
    with pytest.raises(InputError, match="does not run"):
        add_image_model(onnx_path, wrong, repo, name="m")

    good = tmp_path / "good.json"
    good.write_text(json.dumps(PREPROCESS))
    added = add_image_model(onnx_path, good, repo, name="m")
    assert added.embedding_dim == EMBEDDING_DIM
    record = json.loads((added.path / "weights" / "BUILD.json").read_text())
    assert set(record["files"]) == {"model.onnx", "preprocess.json"}
    with pytest.raises(InputError, match="--force"):
        add_image_model(onnx_path, good, repo, name="m")
    # Another network under the same name must keep D.
    other = tmp_path / "other.onnx"
    _export_other_dim(other)
    with pytest.raises(InputError, match="new name"):
        add_image_model(other, good, repo, name="m", version="2")


def _export_other_dim(path: Path) -> None:
    import torch
    from torch import nn

    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    torch.onnx.export(model, (torch.zeros(1, 3, 64, 64),), str(path), opset_version=17,
                      dynamic_axes={"input": {0: "n"}}, input_names=["input"], dynamo=False)
