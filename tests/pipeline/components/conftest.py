"""Component tests: librosa's numba JIT cache is kept in the checkout's ``.cache/`` (ignored by
git) so its ~20 s compilation happens once per machine, not once per test session."""

from __future__ import annotations

import os
from pathlib import Path

# Before anything imports numba; an explicit NUMBA_CACHE_DIR of the developer wins.
os.environ.setdefault(
    "NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[3] / ".cache" / "numba")
)
