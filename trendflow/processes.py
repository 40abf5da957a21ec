"""Small helpers for the processes TrendFlow starts itself (embedded PostgreSQL, the stack)."""

from __future__ import annotations

import psutil


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (an exited zombie does not count)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
