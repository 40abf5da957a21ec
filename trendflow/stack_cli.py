"""``trendflow up | down | status | analyze | demo``: the local stack and the main job.

- ``up [--triton auto|on|off] [--profile fast]``: start the local stack (:mod:`trendflow.stack`).
- ``down``: stop exactly what ``up`` started. ``status``: each piece, up or not (exit 1 if not).
- ``analyze <youtube url | file> [--profile fast]``: through the HTTP API of the running stack,
  or of a stack it starts for this one analysis and stops afterwards.
- ``demo [--input X]``: ``analyze`` of a generated sample clip (or of ``X``) with
  :data:`DEMO_PROFILE` (``prediction``: the forecast and its what-ifs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from trendflow.settings import Settings, get_settings

if TYPE_CHECKING:
    from trendflow.api.client import AnalysisResult
    from trendflow.stack import StackState


# The demo shows the product's main answer, the forecast of views and likes with its what-ifs:
# its profile has model-backed components, so the stack it starts runs Triton (`--triton auto`)
# and builds the models on first use. `--profile fast` is the quick run without models.
DEMO_PROFILE = "prediction"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    up = subparsers.add_parser("up", help="start the local stack on 127.0.0.1")
    up.add_argument("--triton", choices=("auto", "on", "off"), default="auto",
                    help="auto: only if --profile has model-backed components")
    up.add_argument("--profile", default="fast", choices=_builtin_profiles(),
                    help="the built-in profile Triton is decided for: " + _profiles_help())
    up.set_defaults(func=_up)
    down = subparsers.add_parser("down", help="stop what `trendflow up` started")
    down.set_defaults(func=_down)
    status = subparsers.add_parser("status", help="each piece of the local stack")
    status.add_argument("--json", action="store_true",
                        help="one JSON document: {ok, pieces: [{piece, state, detail}]}")
    status.set_defaults(func=_status)
    analyze = subparsers.add_parser(
        "analyze", help="analyse a YouTube URL or a video file through the API")
    analyze.add_argument("source", help="a YouTube URL or a video file")
    _analysis_options(analyze)
    analyze.set_defaults(func=_analyze)
    demo = subparsers.add_parser(
        "demo", help="analyse a generated sample clip (or --input) on embedded defaults")
    demo.add_argument("--input", default=None, help="a YouTube URL or file instead of the sample")
    _analysis_options(demo, default_profile=DEMO_PROFILE)
    demo.set_defaults(func=_demo)


def _builtin_profiles() -> list[str]:
    from trendflow.db.seed.seed import load_seed

    return [p.profile_id for p in load_seed().profiles]


def _profiles_help() -> str:
    from trendflow.db.seed.seed import load_seed

    return "; ".join(f"{p.profile_id} ({p.description.split('.')[0].strip()})"
                     for p in load_seed().profiles)


def _analysis_options(p: argparse.ArgumentParser, *, default_profile: str = "fast") -> None:
    p.add_argument("--profile", default=default_profile, metavar="PROFILE",
                   help="built-in: " + _profiles_help() + "; or the id of one of your own "
                        "profiles (GET /api/profiles); default %(default)s")
    p.add_argument("--json", action="store_true",
                   help="print the result as one JSON document on stdout (progress on stderr)")
    p.add_argument("--api", default=None,
                   help="an API base URL (default: the running local stack, else start one)")
    p.add_argument("--token", default=None,
                   help="bearer token for --api (default: $TRENDFLOW_TOKEN)")
    p.add_argument("--triton", choices=("auto", "on", "off"), default="auto",
                   help="when a stack is started for this analysis")


def _print_state(state: object) -> None:
    from trendflow.stack import StackState
    from trendflow.web import studio_url

    assert isinstance(state, StackState)
    print(f"API:        {state.api_url}")
    print(f"API docs:   {state.docs_url}")
    if state.api_url:
        print(f"Studio:     {studio_url(state.api_url)}")
    for i, url in enumerate(state.replica_urls[1:], start=1):
        print(f"replica {i}:  {url}")
    if state.proxy_url and state.proxy_url != state.api_url:
        print(f"Serve proxy: {state.proxy_url}  (routes to every replica)")
    print(f"dashboard:  {state.dashboard_url}  (Ray token auth: ~/.ray/auth_token)")
    tr = state.triton
    print("triton:     " + (f"{tr['url']} (pid {tr['pid']})" if tr.get("started")
                            else f"not started: {tr.get('reason')}"))
    llm = state.llm
    if llm:
        print("llm:        " + (f"{llm['url']} (pid {llm['pid']}, model {llm['model']})"
                                if llm.get("started") else f"not started: {llm.get('reason')}"))
    print(f"store:      {state.store.get('location')}")
    print(f"admin:      {state.admin_email}  token {state.admin_token}")
    state_file = Path(state.data_dir) / "stack" / "state.json"
    print(f"state file: {state_file}  (`trendflow down` stops it)")


_MODEL_LINE = re.compile(r"triton: model (\d+)/(\d+) (.+)")


def start_stack(settings: Settings, *, triton: str, profile: str,
                stream: TextIO | None = None) -> StackState:
    """``stack.up`` with its progress on ``stream``: each piece as it starts, the model build
    as a bar (rich on a terminal, plain lines otherwise)."""
    from trendflow import stack
    from trendflow.progress import Steps

    with Steps(stream) as steps:
        def on_line(line: str) -> None:
            if (m := _MODEL_LINE.fullmatch(line)) is None:
                steps.step(line)
                return
            if m.group(1) == "1":
                steps.count("building models", int(m.group(2)))
            steps.advance(m.group(3))

        return stack.up(settings, triton=triton, profile=profile, on_line=on_line)


def _up(args: argparse.Namespace) -> int:
    from trendflow import stack

    settings = get_settings()
    print(f"starting the local stack (log: {stack.log_path(settings)}) ...", flush=True)
    state = start_stack(settings, triton=args.triton, profile=args.profile)
    _print_state(state)
    return 0


def _down(args: argparse.Namespace) -> int:
    from trendflow import stack

    for line in stack.down(get_settings()):
        print(line)
    return 0


def _status(args: argparse.Namespace) -> int:
    from trendflow import stack

    ok, rows = stack.status(get_settings())
    if args.json:
        print(json.dumps({"ok": ok, "pieces": [{"piece": p, "state": st, "detail": d}
                                               for p, st, d in rows]}, indent=2))
        return 0 if ok else 1
    for piece, state, detail in rows:
        print(f"{piece:<11} {state:<8} {detail}")
    return 0 if ok else 1


def run_analysis(source: str, args: argparse.Namespace, settings: Settings) -> int:
    """``analyze`` body: use the given API, the running stack, or a stack of its own."""
    from trendflow import stack
    from trendflow.api.client import analyze, print_summary
    from trendflow.errors import ConfigError
    from trendflow.progress import RunProgress

    # With --json, stdout carries only the result; everything said on the way goes to stderr.
    human = sys.stderr if args.json else sys.stdout

    def say(text: str) -> None:
        print(text, file=human, flush=True)

    def finish(res: AnalysisResult) -> None:
        if args.json:
            print(json.dumps(res.to_dict(), indent=2, default=str))
        else:
            print_summary(res)

    if args.api:
        token = args.token or os.environ.get("TRENDFLOW_TOKEN")
        if not token:
            raise ConfigError("--api needs --token or TRENDFLOW_TOKEN")
        res = analyze(source, api_url=args.api.rstrip("/"), token=token, profile=args.profile,
                      out=say, progress=RunProgress(human))
        finish(res)
        return 0 if res.status == "ok" else 1
    state = stack.running_state(settings)
    started_here = state is None
    if state is None or state.phase != "ready":
        if not started_here:
            raise ConfigError(f"the local stack is {state.phase if state else 'down'}; "
                              "see `trendflow status`")
        say(f"no local stack is running: starting one for this analysis "
            f"(log: {stack.log_path(settings)}) ...")
        state = start_stack(settings, triton=args.triton, profile=args.profile, stream=human)
        say(f"stack ready: API {state.api_url}, dashboard {state.dashboard_url}")
    try:
        assert state.api_url is not None and state.admin_token is not None
        res = analyze(source, api_url=state.api_url, token=state.admin_token,
                      profile=args.profile, settings=stack.local_settings(settings),
                      out=say, progress=RunProgress(human))
        finish(res)
    finally:
        if started_here:
            say("stopping the stack started for this analysis ...")
            for line in stack.down(settings):
                say(f"  {line}")
    return 0 if res.ok else 1


def _analyze(args: argparse.Namespace) -> int:
    return run_analysis(args.source, args, get_settings())


def _demo(args: argparse.Namespace) -> int:
    from trendflow.api.client import demo_sample

    settings = get_settings()
    source = args.input
    if source is None:
        path = settings.data_dir.resolve() / "demo" / "demo_clip.mp4"
        demo_sample(path)
        print(f"sample clip: {path} (30 s: a title card, panning scenes cut every 2.5 s, a face, "
              "a Russian narration, clicks at 120 BPM)",
              file=sys.stderr if args.json else sys.stdout)
        source = str(path)
    sys.stdout.flush()
    return run_analysis(source, args, settings)
