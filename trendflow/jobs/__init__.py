"""Operator jobs, run with ``ray job submit -- python -m trendflow.jobs.<name>``.

Each job prints one progress line per step (the Ray dashboard's job page shows the log) and
exits non-zero on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from trendflow.errors import TrendflowError
from trendflow.settings import Settings, get_settings

JobBody = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def run_job(
    parser: argparse.ArgumentParser,
    body: JobBody,
    argv: Sequence[str] | None = None,
    settings: Settings | None = None,
) -> int:
    """Parse ``argv``, run ``body`` on its own event loop; a TrendFlow error prints its code
    and message on stderr and exits 2 (1 is the job's own "found problems")."""
    args = parser.parse_args(argv)
    try:
        return asyncio.run(body(args, settings or get_settings()))
    except TrendflowError as exc:
        print(f"error [{exc.code}]: {exc.message}", file=sys.stderr, flush=True)
        return 2
