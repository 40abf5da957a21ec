"""CPU priority of the processes that analyse: component workers and the local Triton server.

While a run analyses, its workers would take every core the API replicas need to answer a
status poll. They run at a higher OS niceness (``runtime.worker_niceness``) than the API, the
scheduler and PostgreSQL, so the kernel's scheduler hands a waking request handler the core at
once, while idle cores still go to the workers (no throughput is lost).

Niceness only goes up without privileges (any user may raise it, only root may lower it), so
this never lowers a process that already runs nicer than asked. On Linux niceness belongs to
each thread, and a new thread inherits its creator's: :func:`lower_priority` raises every thread
the process has (a Ray worker already runs Ray's own threads when an actor's ``__init__`` runs),
and whatever it starts later inherits the new value.
"""

from __future__ import annotations

import os
from pathlib import Path

from trendflow.errors import ConfigError
from trendflow.settings import RuntimeSettings, get_settings

_TASKS = Path("/proc/self/task")


def lower_priority(niceness: int) -> None:
    """Raise this process's niceness (every thread of it) to at least ``niceness``.

    Raises :class:`ConfigError` when the system refuses (a sandbox that forbids
    ``setpriority``): set ``TRENDFLOW_RUNTIME__WORKER_NICENESS=0`` there.
    """
    if niceness <= 0:
        return
    # Linux: one entry per thread; elsewhere PRIO_PROCESS of 0 is the whole process.
    threads = [int(t) for t in os.listdir(_TASKS)] if _TASKS.is_dir() else [0]
    for tid in threads:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < niceness:
                os.setpriority(os.PRIO_PROCESS, tid, niceness)
        except ProcessLookupError:
            continue  # the thread ended meanwhile
        except PermissionError as exc:
            raise ConfigError(
                f"cannot raise the niceness of thread {tid} to {niceness}: {exc}; set "
                "TRENDFLOW_RUNTIME__WORKER_NICENESS=0 where the system forbids it",
                niceness=niceness,
            ) from exc


def lower_worker_priority(runtime: RuntimeSettings | None) -> None:
    """A component worker's :func:`lower_priority`, with the runtime settings it was given.

    A worker started without them (the CPU pool) reads ``TRENDFLOW_RUNTIME__WORKER_NICENESS``
    from its environment, which Ray workers inherit from the process that started Ray (the
    local stack's supervisor, or ``ray start`` on each node).
    """
    lower_priority((runtime or get_settings().runtime).worker_niceness)


__all__ = ["lower_priority", "lower_worker_priority"]
