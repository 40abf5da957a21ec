"""Bring your own image-embedding model: an ONNX file + a preprocessing spec → a served model.

:func:`add_image_model` (CLI: ``trendflow models add-image-model``) writes::

    <repository>/<name>/config.pbtxt            IMAGE uint8 [-1,-1,3] → EMBEDDING fp32 [D]
    <repository>/<name>/configs/gpu.pbtxt       the same on KIND_GPU (--model-config-name=gpu)
    <repository>/<name>/<version>/model.py      trendflow/triton/byo_model.py, unchanged
    <repository>/<name>/<version>/weights/      model.onnx, preprocess.json, BUILD.json

``D`` is read from the ONNX output (or measured with one run when it is symbolic). The model is
checked before anything is written: one ONNX Runtime run on a test image through the exact
served preprocessing must give ``[1, D]`` finite values. ``BUILD.json`` records the sha256 of
every weight file, so the model mapping pins it like any built model. Versions of one name share
``config.pbtxt`` (``version_policy: all``: every version stays served, so pinned runs keep
working) and must share ``D``. Nothing is written on failure; an existing version is replaced
only with ``force``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from trendflow.errors import ConfigError, InputError
from trendflow.triton.build import BUILD_FILE, sha256_file

BYO_BUILDER = "byo-image-1"
MODEL_CODE = Path(__file__).with_name("byo_model.py")
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")


class ImagePreprocess(BaseModel):
    """``preprocess.json``: how frames become the network's input (see ``byo_model.py``)."""

    model_config = ConfigDict(extra="forbid")

    size: tuple[int, int]
    resize: Literal["shorter_side_center_crop", "stretch"] = "shorter_side_center_crop"
    interpolation: Literal["bilinear", "bicubic", "area", "nearest"] = "bicubic"
    channel_order: Literal["RGB", "BGR"] = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    input_name: str | None = None  # default: the ONNX model's only input
    output_name: str | None = None  # default: its first output
    l2_normalize: bool = True

    @field_validator("size")
    @classmethod
    def _size(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 8 or max(value) > 4096:
            raise ValueError("size must be [height, width] between 8 and 4096")
        return value

    @field_validator("std")
    @classmethod
    def _std(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(v <= 0 for v in value):
            raise ValueError("std must be positive")
        return value


@dataclass(frozen=True, slots=True)
class AddedModel:
    name: str
    version: str
    embedding_dim: int
    path: Path
    files: dict[str, str]


def load_preprocess(path: Path) -> ImagePreprocess:
    """Parse ``path``; an unreadable or invalid spec → :class:`InputError` naming the problem."""
    try:
        return ImagePreprocess.model_validate(json.loads(Path(path).read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"preprocessing spec {path} cannot be read: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"preprocessing spec {path}: {where}: {first['msg']}") from None


def _config(name: str, dim: int, max_batch_size: int, kind: str, threads: int) -> str:
    return (
        "# Operator-supplied image-embedding model (`trendflow models add-image-model`).\n"
        f"# Input: RGB uint8 frames [H, W, 3] (one size per request). Output: EMBEDDING [{dim}];\n"
        f"# preprocessing from <version>/weights/preprocess.json, code: <version>/model.py.\n"
        f'name: "{name}"\n'
        f'backend: "python"\n'
        f"max_batch_size: {max_batch_size}\n"
        f"version_policy: {{ all {{ }} }}\n"
        f'input [ {{ name: "IMAGE", data_type: TYPE_UINT8, dims: [ -1, -1, 3 ] }} ]\n'
        f'output [ {{ name: "EMBEDDING", data_type: TYPE_FP32, dims: [ {dim} ] }} ]\n'
        f"dynamic_batching {{ max_queue_delay_microseconds: 2000 }}\n"
        f"instance_group [ {{ kind: {kind}, count: 1 }} ]\n"
        f'parameters: {{ key: "intra_op_threads", value: {{ string_value: "{threads}" }} }}\n'
        f'parameters: {{ key: "embedding_dim", value: {{ string_value: "{dim}" }} }}\n'
    )


def _served_dim(config: Path) -> int | None:
    for line in config.read_text().splitlines():
        if line.startswith("output") and "EMBEDDING" in line:
            return int(line.split("dims: [")[1].split("]")[0])
    return None


def _check_model(onnx_path: Path, spec: ImagePreprocess) -> tuple[dict[str, object], int]:
    """Resolve input/output names, run once on a test image; the spec as served, and D."""
    import onnxruntime as ort

    from trendflow.triton import byo_model

    try:
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ORT raises several unrelated types for bad files
        raise InputError(f"{onnx_path} is not an ONNX model ONNX Runtime can load: {exc}") from exc
    inputs, outputs = session.get_inputs(), session.get_outputs()
    input_name = spec.input_name or (inputs[0].name if len(inputs) == 1 else None)
    if input_name is None or input_name not in {i.name for i in inputs}:
        raise InputError(
            f"{onnx_path}: choose input_name in the spec from {[i.name for i in inputs]}"
        )
    output_name = spec.output_name or outputs[0].name
    if output_name not in {o.name for o in outputs}:
        raise InputError(f"{onnx_path}: output {output_name!r} not in {[o.name for o in outputs]}")
    served = spec.model_dump(mode="json") | {"input_name": input_name, "output_name": output_name}
    h, w = spec.size
    # A real-looking test image (gradients + texture) at a size the resize has to handle.
    yy, xx = np.mgrid[0 : 2 * h, 0 : 3 * w]
    image = np.stack([xx % 256, yy % 256, (xx + yy) % 256], axis=-1).astype(np.uint8)[None]
    try:
        emb = byo_model.embed(session, image, served)
    except Exception as exc:  # noqa: BLE001 - any failure here means spec and model disagree
        raise InputError(f"{onnx_path} does not run with the given preprocessing: {exc}") from exc
    if emb.ndim != 2 or emb.shape[0] != 1 or not np.isfinite(emb).all():
        raise InputError(f"{onnx_path} must output one finite vector per image, got {emb.shape}")
    return served, int(emb.shape[1])


def add_image_model(
    onnx_path: Path,
    preprocess_path: Path,
    repository: Path,
    *,
    name: str,
    version: str = "1",
    max_batch_size: int = 16,
    intra_op_threads: int = 2,
    force: bool = False,
) -> AddedModel:
    """Register an ONNX image-embedding model in ``repository`` (see the module docstring)."""
    if not name or set(name) - _NAME_CHARS:
        raise InputError(f"model name {name!r}: use lowercase letters, digits, '_' and '-'")
    if not version.isdigit() or int(version) < 1:
        raise InputError(f"model version {version!r} must be a positive integer")
    if not 1 <= max_batch_size <= 1024:
        raise InputError("max_batch_size must be between 1 and 1024")
    if not Path(onnx_path).is_file():
        raise InputError(f"ONNX file {onnx_path} does not exist")
    spec = load_preprocess(preprocess_path)
    served, dim = _check_model(Path(onnx_path), spec)

    model_dir = Path(repository) / name
    config = model_dir / "config.pbtxt"
    if config.is_file():
        existing = _served_dim(config)
        if existing is None:
            raise ConfigError(f"{model_dir} exists and is not a bring-your-own image model")
        if existing != dim:
            raise InputError(
                f"{name} already serves EMBEDDING [{existing}]; this model outputs [{dim}] — "
                "use a new name"
            )
    target = model_dir / version
    if target.exists() and not force:
        raise InputError(f"{target} exists; pass --force to replace it")

    model_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-{version}-", dir=model_dir))
    try:
        weights = staging / "weights"
        weights.mkdir()
        shutil.copyfile(onnx_path, weights / "model.onnx")
        (weights / "preprocess.json").write_text(json.dumps(served, indent=2, sort_keys=True))
        files = {p.name: sha256_file(p) for p in sorted(weights.iterdir())}
        record = {
            "model": name,
            "version": version,
            "builder": BYO_BUILDER,
            "sources": {"onnx": str(Path(onnx_path).resolve()),
                        "onnx_sha256": sha256_file(Path(onnx_path))},
            "files": files,
            "embedding_dim": dim,
            "verification": {"check": "ONNX Runtime run through the served preprocessing: "
                                      f"[1, {dim}] finite", "max_abs_diff": 0.0,
                             "tolerance": 0.0},
        }
        (weights / BUILD_FILE).write_text(json.dumps(record, indent=2, sort_keys=True))
        shutil.copyfile(MODEL_CODE, staging / "model.py")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    (model_dir / "configs").mkdir(exist_ok=True)
    config.write_text(_config(name, dim, max_batch_size, "KIND_CPU", intra_op_threads))
    (model_dir / "configs" / "gpu.pbtxt").write_text(
        _config(name, dim, max_batch_size, "KIND_GPU", intra_op_threads)
    )
    return AddedModel(name, version, dim, target, files)



def _cli(args: argparse.Namespace) -> int:
    from trendflow.settings import get_settings

    repo = Path(args.repository or get_settings().triton.repository)
    added = add_image_model(
        Path(args.onnx), Path(args.preprocess), repo, name=args.name, version=args.version,
        max_batch_size=args.max_batch_size, force=args.force,
    )
    print(f"{added.name}:{added.version} added at {added.path} — EMBEDDING [{added.embedding_dim}]."
          f" Map it in a profile (image_embeddings: {added.name}:{added.version}) and reload "
          "Triton (`trendflow triton down && trendflow triton up`).")
    return 0


def register_add_image_model(models_subparsers: argparse._SubParsersAction) -> None:
    """``trendflow models add-image-model ONNX --name N --preprocess JSON``."""
    p = models_subparsers.add_parser(
        "add-image-model", help="register an ONNX image-embedding model (bring your own)"
    )
    p.add_argument("onnx", help="the ONNX file: images in, one embedding per image out")
    p.add_argument("--name", required=True, help="Triton model name (lowercase, digits, _ -)")
    p.add_argument("--version", default="1", help="model version (default 1)")
    p.add_argument("--preprocess", required=True, help="preprocess.json (docs/triton.md)")
    p.add_argument("--repository", help="model repository (default: settings triton.repository)")
    p.add_argument("--max-batch-size", type=int, default=16, help="frames per request (16)")
    p.add_argument("--force", action="store_true", help="replace an existing version")
    p.set_defaults(func=_cli)


__all__ = [
    "AddedModel",
    "ImagePreprocess",
    "add_image_model",
    "load_preprocess",
    "register_add_image_model",
]
