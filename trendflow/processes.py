"""Small helpers for the processes TrendFlow starts itself (embedded PostgreSQL, the stack)."""

from __future__ import annotations

import os
import signal
import time
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


def alive_as(pid: int, binary: bytes) -> bool:
    """Whether ``pid`` is alive and really runs ``binary`` (a PID may be reused after the file
    naming it was written); reaps our own exited child so it does not linger."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child: started by another trendflow command
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return binary in cmdline.split(b"\0", 1)[0]


def stop_pid(pid: int, pid_file: Path, binary: bytes, *, timeout_s: float) -> bool:
    """Stop the recorded ``binary`` process by PID (SIGTERM, then SIGKILL after ``timeout_s``)
    and remove its PID file; False when it was not running."""
    if not alive_as(pid, binary):
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive_as(pid, binary):
        time.sleep(0.1)
    if alive_as(pid, binary):
        os.kill(pid, signal.SIGKILL)
        while alive_as(pid, binary):
            time.sleep(0.05)
    pid_file.unlink(missing_ok=True)
    return True
