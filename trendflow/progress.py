"""Progress output of the commands that take a while (``analyze``, ``demo``, ``up``,
``models build``): ``rich`` bars on a terminal, plain lines otherwise.

A terminal (``stream.isatty()``, ``TERM`` not ``dumb``) gets live bars that redraw in place; a
pipe, a log file or CI gets one plain line per change, so logs stay readable and greppable.
Both speak the same small interface:

- :class:`Steps` — named steps with an optional counted sub-task (``up``: each piece as it
  starts, the model build as a bar; ``models build``: one bar over the models);
- :class:`RunProgress` — one analysis followed through ``GET /api/runs/{id}/status``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

Print = Callable[[str], None]
_FINISHED = ("ok", "empty", "error", "skipped")


def is_interactive(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal that can redraw (not a pipe, not ``TERM=dumb``)."""
    return stream.isatty() and os.environ.get("TERM", "") != "dumb"


def _console(stream: TextIO) -> Any:
    from rich.console import Console

    # Only called once rich output was chosen (a terminal, or asked for explicitly).
    return Console(file=stream, highlight=False, force_terminal=True)


class Steps:
    """Named steps of a long command; ``count(label, total)`` starts a counted sub-task whose
    ``advance(what)`` moves it by one. Plain: one line each; rich: a spinner and a bar."""

    def __init__(self, stream: TextIO | None = None, *, rich: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.rich = is_interactive(self.stream) if rich is None else rich
        self._progress: Any = None
        self._spinner: Any = None
        self._counted: Any = None

    def __enter__(self) -> Steps:
        if self.rich:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                      BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                      console=_console(self.stream), transient=True)
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def step(self, text: str) -> None:
        """A step started or finished: kept above the live area (rich) or printed (plain)."""
        if self._progress is None:
            print(text, file=self.stream, flush=True)
            return
        self._progress.console.print(text)
        if self._spinner is None:
            self._spinner = self._progress.add_task(text, total=None)
        self._progress.update(self._spinner, description=text)

    def count(self, label: str, total: int) -> None:
        """Start a counted sub-task of ``total`` items."""
        if self._progress is None:
            print(f"{label}: 0/{total}", file=self.stream, flush=True)
            self._counted = [label, 0, total]
            return
        self._counted = self._progress.add_task(label, total=total)

    def advance(self, what: str) -> None:
        """One item of the counted sub-task is done."""
        if self._progress is None:
            label, done, total = self._counted
            self._counted = [label, done + 1, total]
            print(f"{label}: {done + 1}/{total} {what}", file=self.stream, flush=True)
            return
        self._progress.update(self._counted, advance=1, description=f"{what}")


class RunProgress:
    """One run followed through its status documents (``GET /api/runs/{id}/status``)."""

    def __init__(self, stream: TextIO | None = None, *, rich: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.rich = is_interactive(self.stream) if rich is None else rich
        self.started = time.monotonic()
        self._last = ""
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> RunProgress:
        if self.rich:
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

            self._progress = Progress(TextColumn("{task.description:<28}"), BarColumn(),
                                      TaskProgressColumn(), TextColumn("{task.fields[state]}"),
                                      console=_console(self.stream))
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, st: dict[str, Any]) -> None:
        """Show ``st`` (plain: a line only when the stage or a component's status changed)."""
        if self._progress is None:
            signature = json.dumps([st["status"], st.get("stage"),
                                    [(c["name"], c["status"]) for c in st["components"]]])
            if signature != self._last:
                print(progress_line(st, self.started), file=self.stream, flush=True)
                self._last = signature
            return
        run = f"run ({st.get('stage') or st['status']})"
        rows = [("run", run, float(st.get("progress") or 0), self._eta(st))]
        rows += [(c["name"], f"  {c['name']}", float(c.get("progress") or 0), c["status"])
                 for c in st["components"]]
        for key, label, fraction, state in rows:
            if key not in self._tasks:
                self._tasks[key] = self._progress.add_task(label, total=1.0, state=state)
            self._progress.update(self._tasks[key], description=label, completed=fraction,
                                  state=state)

    @staticmethod
    def _eta(st: dict[str, Any]) -> str:
        eta = st.get("eta_s")
        return f"{st['status']}, eta {eta:.0f}s" if isinstance(eta, (int, float)) \
            else st["status"]


def progress_line(st: dict[str, Any], started: float) -> str:
    """The plain progress line of one status document."""
    comps = st.get("components") or []
    done = sum(1 for c in comps if c["status"] in _FINISHED)
    running = [c["name"] for c in comps if c["status"] == "running"]
    width = 24
    filled = int(round(float(st.get("progress") or 0) * width))
    bar = "#" * filled + "-" * (width - filled)
    eta = st.get("eta_s")
    eta_s = f" eta {eta:.0f}s" if isinstance(eta, (int, float)) else ""
    return (f"[{time.monotonic() - started:6.1f}s] [{bar}] {st['status']:<9} "
            f"stage={st.get('stage') or '-'} components {done}/{len(comps)}"
            + (f" running: {', '.join(running)}" if running else "") + eta_s)
