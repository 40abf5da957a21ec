"""Small helpers for the processes TrendFlow starts itself (embedded PostgreSQL, the stack)."""

from __future__ import annotations

from pathlib import Path

import psutil


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (an exited zombie does not count)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a process's log (``(no log)`` when it cannot be read): what
    an error message shows of why a process we started failed."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
