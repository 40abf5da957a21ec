"""Packaging: what `pip install` resolves is declared, the packages installed without their
dependencies are declared and reported, `pip check` complains only about those, yt-dlp can be
upgraded in place."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from datetime import date
from pathlib import Path

from packaging.requirements import Requirement

from trendflow import doctor
from trendflow.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXPORT_ONLY = {"torch", "onnx", "onnxscript", "transformers", "safetensors", "keras", "h5py"}


def _project() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]  # type: ignore[no-any-return]


def test_export_only_packages_are_an_extra_not_runtime_dependencies() -> None:
    project = _project()
    core = {Requirement(r).name for r in project["dependencies"]}  # type: ignore[union-attr]
    models = {Requirement(r).name for r in project["optional-dependencies"]["models"]}  # type: ignore[index]
    assert not core & EXPORT_ONLY and models == EXPORT_ONLY
    assert {"scikit-image", "rich", "nvidia-ml-py"} <= core  # imported by package commands
    makefile = (ROOT / "Makefile").read_text()
    assert "-e '.[dev,models]'" in makefile and "pip install -q pip==" in makefile


def test_yt_dlp_has_a_floor_and_can_be_upgraded_in_place() -> None:
    (req,) = [Requirement(r) for r in _project()["dependencies"]  # type: ignore[union-attr]
              if Requirement(r).name == "yt-dlp"]
    (spec,) = req.specifier
    assert spec.operator == ">="  # a newer release satisfies it: `pip install -U yt-dlp`
    # pip agrees: a later yt-dlp than the floor would not conflict with trendflow.
    later = f"{int(spec.version.split('.')[0]) + 1}.1.1"
    assert req.specifier.contains(later)
    assert doctor.yt_dlp_check(date(2027, 6, 1)).state == "old"
    assert doctor.yt_dlp_check(date(*map(int, spec.version.split(".")))).state == "ok"


def test_no_deps_packages_are_the_makefiles_and_the_only_pip_check_complaints() -> None:
    makefile = (ROOT / "Makefile").read_text()
    block = re.search(r"^NO_DEPS := (.*?)(?<!\\)\n", makefile, re.S | re.M)
    assert block
    pinned = dict(p.split("==") for p in block.group(1).replace("\\\n", " ").split())
    assert pinned == {name: v for name, (v, _) in doctor.NO_DEPS.items()}
    out = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True,
                         text=True).stdout
    complaining = {line.split()[0].lower() for line in out.splitlines() if line.strip()}
    assert complaining <= set(doctor.NO_DEPS), out  # every other package is consistent
    documented = (ROOT / "docs" / "operations.md").read_text()
    for name in doctor.NO_DEPS:
        assert f"`{name}`" in documented, name


def test_doctor_reports_every_no_deps_package(capsys: object) -> None:
    assert main(["doctor"]) == 0
    text = capsys.readouterr().out  # type: ignore[attr-defined]
    for name in doctor.NO_DEPS:
        assert re.search(rf"^{re.escape(name)}\s+ok\s+", text, re.M), name
    assert re.search(r"^tritonserver\s+ok", text, re.M)
