"""The local Triton server: the ``tritonserver`` binary that the ``nvidia-pytriton`` wheel ships.

Locally (and in tests) TrendFlow runs the real server on loopback against ``triton_repo/``; in
production ``TRENDFLOW_TRITON__URL`` points at NVIDIA's Triton container serving the same
repository. The wheel's binary needs three things around it, all set up here:

* a backends directory holding the python backend (``libtriton_python.so`` + its utils) and the
  stub built for this Python (``python_backend_stubs/3.11``);
* ``LD_LIBRARY_PATH`` = the wheel's bundled libs + this interpreter's ``LIBDIR`` (without
  ``LIBDIR`` the stub loads the system libpython and crashes);
* the venv's ``bin`` first on ``PATH``: the stub runs ``model.py`` with that interpreter, so the
  model code sees the venv's packages (onnxruntime, tokenizers, ctranslate2 …).

A started server writes ``<work_dir>/tritonserver.log`` and ``<work_dir>/tritonserver.pid.json``
(PID, ports, repository); :func:`stop_server` ends exactly that PID.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import httpx

from trendflow.errors import ConfigError, DependencyMissing, ServiceUnavailable
from trendflow.priority import lower_priority
from trendflow.processes import alive_as, log_tail, stop_pid

PID_FILE = "tritonserver.pid.json"
LOG_FILE = "tritonserver.log"
_EXIT_TIMEOUT_S = 5


@dataclass(frozen=True, slots=True)
class ServerTLS:
    """gRPC TLS for the local server; ``mutual`` makes it demand a client certificate."""

    cert: Path
    key: Path
    ca: Path
    mutual: bool = True


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """A running (or recorded) local server."""

    pid: int
    repository: str
    http_port: int
    grpc_port: int
    metrics_port: int
    log_path: str
    tls: bool = False
    model_config_name: str | None = None

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"


def _wheel_root() -> Path:
    # Located, not imported: pytriton's own imports need packages we deliberately do not install.
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise DependencyMissing(
            "nvidia-pytriton is not installed; it ships the local tritonserver binary "
            "(install with `pip install --no-deps nvidia-pytriton==0.7.0`, see the Makefile)",
            dependency="nvidia-pytriton",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "tritonserver"


def server_binary() -> Path:
    """The ``tritonserver`` executable inside the wheel."""
    path = _wheel_root() / "bin" / "tritonserver"
    if not path.is_file():
        raise DependencyMissing(f"tritonserver binary missing at {path}", dependency="tritonserver")
    return path


def prepare_backends(work_dir: Path) -> Path:
    """Create ``<work_dir>/backends/python`` with the python backend and this Python's stub."""
    root = _wheel_root()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    sources = [
        root / "backends" / "python" / "libtriton_python.so",
        root / "backends" / "python" / "triton_python_backend_utils.py",
        root / "python_backend_stubs" / version / "triton_python_backend_stub",
    ]
    target = work_dir / "backends" / "python"
    target.mkdir(parents=True, exist_ok=True)
    for src in sources:
        if not src.is_file():
            raise DependencyMissing(
                f"python backend file missing in the nvidia-pytriton wheel: {src}",
                dependency="nvidia-pytriton",
            )
        dst = target / src.name
        if not dst.exists() or dst.stat().st_size != src.stat().st_size:
            shutil.copy2(src, dst)
    return target.parent


def server_env() -> dict[str, str]:
    """The environment the binary and its python stubs need (see the module docstring)."""
    libs = _wheel_root().parent.parent / "nvidia_pytriton.libs"
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (str(libs), libdir, env.get("LD_LIBRARY_PATH", "")) if p
    )
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
    # Model code runs in the stub processes: keep their thread pools small on shared CPUs.
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("KERAS_BACKEND", "torch")
    return env


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for tests and `triton up --ports auto`)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    repository: Path,
    work_dir: Path,
    *,
    http_port: int,
    grpc_port: int,
    metrics_port: int,
    tls: ServerTLS | None = None,
    model_config_name: str | None = None,
    timeout_s: float = 180.0,
    niceness: int = 0,
) -> ServerInfo:
    """Start ``tritonserver`` on loopback and wait until ``/v2/health/ready`` answers 200.

    ``niceness`` > 0 starts it (and so the model processes it forks) at that OS niceness, below
    the API (:mod:`trendflow.priority`; the local stack passes ``runtime.worker_niceness``).

    Raises :class:`ConfigError` if a server recorded in ``work_dir`` is still running, and
    :class:`ServiceUnavailable` (with the log tail) if it exits or is not ready in ``timeout_s``.
    """
    repository = repository.resolve()
    if not repository.is_dir():
        raise ConfigError(f"Triton model repository {repository} does not exist")
    work_dir.mkdir(parents=True, exist_ok=True)
    running = read_server(work_dir)
    if running is not None and _alive(running.pid):
        raise ConfigError(
            f"a tritonserver (pid {running.pid}) recorded in {work_dir / PID_FILE} is running; "
            "stop it first (`trendflow triton down`)",
            pid=running.pid,
        )
    backends = prepare_backends(work_dir)
    log_path = work_dir / LOG_FILE
    cmd = [
        str(server_binary()),
        f"--model-repository={repository}",
        f"--backend-directory={backends}",
        "--http-address=127.0.0.1",
        f"--http-port={http_port}",
        "--grpc-address=127.0.0.1",
        f"--grpc-port={grpc_port}",
        "--metrics-address=127.0.0.1",
        f"--metrics-port={metrics_port}",
        "--allow-gpu-metrics=false",
        f"--exit-timeout-secs={_EXIT_TIMEOUT_S}",
        "--strict-readiness=true",
    ]
    if model_config_name:
        cmd.append(f"--model-config-name={model_config_name}")
    if tls is not None:
        for path in (tls.cert, tls.key, tls.ca):
            if not Path(path).is_file():
                raise ConfigError(f"TLS file {path} does not exist")
        cmd += [
            "--grpc-use-ssl=true",
            f"--grpc-use-ssl-mutual={'true' if tls.mutual else 'false'}",
            f"--grpc-server-cert={tls.cert}",
            f"--grpc-server-key={tls.key}",
            f"--grpc-root-cert={tls.ca}",
        ]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server_env(),
            cwd=work_dir,
            start_new_session=True,  # a Ctrl-C in the shell must not kill it half-way
            # Set in the child before exec: every thread and stub it starts inherits it.
            preexec_fn=partial(lower_priority, niceness) if niceness > 0 else None,
        )
    info = ServerInfo(
        pid=proc.pid,
        repository=str(repository),
        http_port=http_port,
        grpc_port=grpc_port,
        metrics_port=metrics_port,
        log_path=str(log_path),
        tls=tls is not None,
        model_config_name=model_config_name,
    )
    (work_dir / PID_FILE).write_text(json.dumps(asdict(info), indent=2))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            (work_dir / PID_FILE).unlink(missing_ok=True)
            raise ServiceUnavailable(
                f"tritonserver exited with code {code} during start-up; log {log_path}:\n"
                + log_tail(log_path),
                exit_code=code,
            )
        if _ready(info.http_url):
            return info
        time.sleep(0.25)
    stop_server(work_dir)
    raise ServiceUnavailable(
        f"tritonserver was not ready after {timeout_s:.0f} s; log {log_path}:\n"
        + log_tail(log_path),
        timeout_s=timeout_s,
    )


def read_server(work_dir: Path) -> ServerInfo | None:
    """The server recorded in ``work_dir`` (running or not), or None."""
    path = work_dir / PID_FILE
    if not path.is_file():
        return None
    return ServerInfo(**json.loads(path.read_text()))


def server_ready(info: ServerInfo) -> bool:
    """True when the recorded process lives and answers ready."""
    return _alive(info.pid) and _ready(info.http_url)


def server_alive(info: ServerInfo) -> bool:
    """True while the recorded process lives and is a tritonserver (ready or not)."""
    return _alive(info.pid)


def stop_server(work_dir: Path, *, timeout_s: float = _EXIT_TIMEOUT_S + 10) -> bool:
    """Stop the server recorded in ``work_dir`` by its PID (SIGTERM, then SIGKILL).

    Returns False when nothing was running. Refuses to signal a PID that is not a tritonserver
    (the PID may have been reused since the file was written).
    """
    info = read_server(work_dir)
    if info is None:
        return False
    return stop_pid(info.pid, work_dir / PID_FILE, b"tritonserver", timeout_s=timeout_s)


def _alive(pid: int) -> bool:
    return alive_as(pid, b"tritonserver")


def _ready(http_url: str) -> bool:
    try:
        return httpx.get(f"http://{http_url}/v2/health/ready", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
