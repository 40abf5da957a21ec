"""The code stays ruff- and mypy-clean (STYLE.md): the same commands as ``make lint``.

Both tools run from the environment that runs the tests (the directory of ``sys.executable``),
so the versions pinned in pyproject's ``dev`` extra are the ones that judge. mypy keeps its
cache in ``.mypy_cache``: a first run on a fresh checkout takes over a minute on two cores,
later runs a few seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run_tool(name: str, *args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    exe = BIN / name
    if not exe.exists():
        pytest.fail(f"{exe} is missing: install the dev extra (pip install -e '.[dev]')")
    return subprocess.run(
        [str(exe), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout_s,
        check=False,
    )


def test_ruff_reports_nothing() -> None:
    proc = _run_tool("ruff", "check", "trendflow", "tests", "benchmarks", timeout_s=120)
    assert proc.returncode == 0, f"ruff found problems:\n{proc.stdout}{proc.stderr}"


def test_mypy_reports_nothing() -> None:
    proc = _run_tool("mypy", "trendflow", timeout_s=540)
    assert proc.returncode == 0, f"mypy found problems:\n{proc.stdout}{proc.stderr}"
