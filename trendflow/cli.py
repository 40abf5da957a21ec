"""The ``trendflow`` command.

Each area of the package contributes its sub-commands through a ``register(subparsers)``
function in its own ``cli`` module; this file only assembles them, so ``trendflow --help`` lists
everything and importing one area never pays for another.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from trendflow.errors import TrendflowError

# Modules with a ``register(subparsers: argparse._SubParsersAction) -> None`` function.
COMMAND_MODULES: tuple[str, ...] = (
    "trendflow.contracts_cli",
    "trendflow.db.cli",
    "trendflow.media.cli",
    "trendflow.triton.cli",
    "trendflow.forecast.cli",
    "trendflow.api.cli",
    "trendflow.billing.cli",
    "trendflow.stack_cli",
    "trendflow.render.cli",
    "trendflow.doctor",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trendflow", description="TrendFlow: analyse creators' videos."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: each sub-command sets ``func(args) -> int`` (the exit code)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except TrendflowError as exc:
        print(f"error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
