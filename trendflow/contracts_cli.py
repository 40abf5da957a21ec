"""``trendflow validate`` and ``trendflow schemas generate|check``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from trendflow.contracts.keys import RESULT_STORE
from trendflow.errors import InputError
from trendflow.storage.base import ResultStore


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the contracts sub-commands to the ``trendflow`` parser."""
    validate = subparsers.add_parser(
        "validate",
        help="check one run: manifest, artifacts, NPZ schemas, identity, stray files",
        description=(
            "Check one run against the data contracts and print one line per problem "
            "(exit 0: valid, 1: problems found). TARGET is a run directory "
            "(<store root>/result_store/<platform>/<video>/<run>) or "
            "s3://<bucket>/result_store/<platform>/<video>/<run> (S3 endpoint and credentials "
            "from TRENDFLOW_STORAGE__S3_*)."
        ),
    )
    validate.add_argument("target", help="run directory or s3://bucket/prefix of one run")
    validate.add_argument(
        "--schemas-dir", type=Path, default=None, help="schemas directory (default: the repo's)"
    )
    validate.set_defaults(func=_validate)

    schemas = subparsers.add_parser("schemas", help="generate or check the schema files")
    schemas_sub = schemas.add_subparsers(dest="schemas_command", required=True, metavar="ACTION")
    for action, text in (
        ("generate", "write schemas/manifest.schema.json and schemas/components/*.schema.json"),
        ("check", "exit 1 if any schema file is missing or differs from the code"),
    ):
        cmd = schemas_sub.add_parser(action, help=text, description=text)
        cmd.add_argument(
            "--dir", type=Path, default=None, help="schemas directory (default: the repo's)"
        )
        cmd.set_defaults(func=_schemas_generate if action == "generate" else _schemas_check)


def _open_target(target: str) -> tuple[ResultStore, str]:
    """The store holding a run and the run's prefix inside it."""
    if target.startswith("s3://"):
        from trendflow.settings import get_settings
        from trendflow.storage.factory import open_store

        bucket, _, prefix = target.removeprefix("s3://").partition("/")
        if not bucket or not prefix.strip("/"):
            raise InputError(f"{target!r}: expected s3://<bucket>/{RESULT_STORE}/<platform>/…")
        settings = get_settings()
        storage = settings.storage.model_copy(update={"backend": "s3", "s3_bucket": bucket})
        store = open_store(settings.model_copy(update={"storage": storage}))
        return store, prefix.strip("/") + "/"
    from trendflow.storage.local import LocalStore

    run_dir = Path(target).resolve()
    if not run_dir.is_dir():
        raise InputError(f"{run_dir} is not a directory")
    parts = run_dir.parts
    if len(parts) < 5 or parts[-4] != RESULT_STORE:
        raise InputError(
            f"{run_dir} is not a run directory: expected "
            f"<store root>/{RESULT_STORE}/<platform>/<video>/<run>"
        )
    root = run_dir.parents[3]
    return LocalStore(root), "/".join(parts[-4:]) + "/"


def _validate(args: argparse.Namespace) -> int:
    from trendflow.contracts.validate import validate_run

    store, prefix = _open_target(args.target)
    problems = asyncio.run(validate_run(store, prefix, schemas_dir=args.schemas_dir))
    for line in problems:
        print(line)
    if problems:
        print(f"{len(problems)} problem(s) in {store.describe()}:{prefix}", file=sys.stderr)
        return 1
    print(f"ok: {store.describe()}:{prefix}")
    return 0


def _schemas_dir(args: argparse.Namespace) -> Path:
    from trendflow.contracts.schemas import default_schemas_dir

    return args.dir if args.dir is not None else default_schemas_dir()


def _schemas_generate(args: argparse.Namespace) -> int:
    from trendflow.contracts.schemas import repo_schemas_dir
    from trendflow.pipeline.components.schemas import generate_schema_files

    target = args.dir if args.dir is not None else repo_schemas_dir()
    for path in generate_schema_files(target):
        print(path)
    return 0


def _schemas_check(args: argparse.Namespace) -> int:
    from trendflow.pipeline.components.schemas import check_schema_files

    problems = check_schema_files(_schemas_dir(args))
    for line in problems:
        print(line)
    return 1 if problems else 0
