"""What a running local stack listens on: every listening TCP socket of its processes."""

from __future__ import annotations

from dataclasses import dataclass

import psutil

from trendflow.stack import StackState

LOOPBACK = frozenset({"127.0.0.1", "::ffff:127.0.0.1", "::1"})


@dataclass(frozen=True)
class Listener:
    ip: str
    port: int
    pid: int
    process: str


def stack_pids(state: StackState) -> set[int]:
    """The supervisor, everything below it, and every recorded Ray/PostgreSQL process."""
    roots = {state.supervisor_pid, *state.ray_pids}
    if state.postgres.get("pid"):
        roots.add(int(state.postgres["pid"]))
    pids = set()
    for pid in roots:
        try:
            proc = psutil.Process(pid)
            pids.add(pid)
            pids.update(c.pid for c in proc.children(recursive=True))
        except psutil.NoSuchProcess:
            continue
    return pids


def stack_listeners(state: StackState) -> list[Listener]:
    pids = stack_pids(state)
    out = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status != psutil.CONN_LISTEN or conn.pid not in pids or not conn.laddr:
            continue
        try:
            name = psutil.Process(conn.pid).name()
        except psutil.NoSuchProcess:
            continue
        out.append(Listener(conn.laddr.ip, conn.laddr.port, conn.pid, name))
    return out


def owner_of(state: StackState, port: int) -> Listener:
    """The stack's listener on ``port`` (AssertionError if none)."""
    found = [lst for lst in stack_listeners(state) if lst.port == port]
    assert found, f"nothing of the stack listens on port {port}"
    return found[0]
