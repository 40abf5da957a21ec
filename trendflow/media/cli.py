"""``trendflow media synth``: write test clips with known ground truth."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from trendflow.media import synth


def register(subparsers: Any) -> None:
    """Add ``media synth`` to the ``trendflow`` command."""
    media = subparsers.add_parser("media", help="test and demo media")
    sub = media.add_subparsers(dest="media_command", required=True, metavar="ACTION")
    p = sub.add_parser(
        "synth",
        help="write generated clips with known ground truth",
        description="Clips: " + ", ".join(synth.GENERATORS),
    )
    p.add_argument("clips", nargs="*", help="clip names (default: all but the 21 min one)")
    p.add_argument("--out", type=Path, default=Path("media"), help="output directory")
    p.add_argument("--list", action="store_true", help="list the clip names and exit")
    p.set_defaults(func=_synth)


def _synth(args: argparse.Namespace) -> int:
    if args.list:
        for name, gen in synth.GENERATORS.items():
            print(f"{name:14} {(gen.__doc__ or '').strip().splitlines()[0]}")
        return 0
    names = args.clips or [n for n in synth.GENERATORS if n != "21min"]
    for name in names:
        clip = synth.generate(name, args.out)
        truth = {k: v for k, v in asdict(clip).items() if v not in (None, (), {}, 0, False)}
        truth["path"] = str(clip.path)
        print(json.dumps(truth, default=str))
    return 0
