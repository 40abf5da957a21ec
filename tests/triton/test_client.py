"""Client failure policy and the local server's life cycle, against real tritonserver processes."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from tests.fixtures.triton import ROOT, TritonServer, copy_repo_sources
from trendflow.errors import ModelNotFound, ServiceUnavailable
from trendflow.triton.build import build_all
from trendflow.triton.client import ClientTLS, TritonClient, encode_texts
from trendflow.triton.server import (
    ServerTLS,
    free_port,
    read_server,
    server_ready,
    start_server,
    stop_server,
)

FACE = np.full((1, 64, 64), 128, np.uint8)


@pytest.fixture(scope="module")
def small_repo(triton_server: TritonServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with only face_emotion (fast to load), weights from the session build."""
    repo = tmp_path_factory.mktemp("small-repo")
    copy_repo_sources(repo, ("face_emotion",))
    (repo / "face_emotion" / "1" / "weights").symlink_to(
        triton_server.repository / "face_emotion" / "1" / "weights"
    )
    build_all(repo, ("face_emotion",))  # up to date: verifies the digests, builds nothing
    return repo


def test_unknown_model_fails_fast(triton: TritonClient) -> None:
    started = time.monotonic()
    with pytest.raises(ModelNotFound) as info:
        triton.infer("no_such_model", "1", {"X": np.zeros((1, 1), np.float32)})
    assert info.value.code == "model_not_found"
    assert time.monotonic() - started < 0.2 * 2  # no backoff sleeps were taken
    with pytest.raises(ModelNotFound):
        triton.infer("face_emotion", "7", {"FACE": FACE})


def test_http_protocol_gives_same_answer(triton_server: TritonServer) -> None:
    grpc, http = triton_server.client("grpc"), triton_server.client("http")
    a = grpc.infer("text_embedder", "1", {"TEXT": encode_texts(["same answer"])})["EMBEDDING"]
    b = http.infer("text_embedder", "1", {"TEXT": encode_texts(["same answer"])})["EMBEDDING"]
    np.testing.assert_array_equal(a, b)


def test_server_down_is_transient_then_unavailable(tmp_path: Path) -> None:
    client = TritonClient(f"127.0.0.1:{free_port()}", retries=2, backoff_s=0.05)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as info:
        client.infer("face_emotion", "1", {"FACE": FACE})
    assert info.value.details["attempts"] == 3
    assert time.monotonic() - started >= 0.05 + 0.1  # two backoff sleeps


def test_retries_ride_out_a_restart(small_repo: Path, tmp_path: Path) -> None:
    ports = {"http_port": free_port(), "grpc_port": free_port(), "metrics_port": free_port()}
    work = tmp_path / "srv"
    info = start_server(small_repo, work, **ports)
    client = TritonClient(info.grpc_url, retries=2, backoff_s=1.5)
    try:
        assert client.infer("face_emotion", "1", {"FACE": FACE})["PROBS"].shape == (1, 7)
        stop_server(work)
        restarted = threading.Thread(target=start_server, args=(small_repo, work), kwargs=ports)
        restarted.start()  # comes back within the retry budget (1.5 s + 3 s of backoff)
        out = client.infer("face_emotion", "1", {"FACE": FACE})
        restarted.join()
        assert out["PROBS"].shape == (1, 7)
    finally:
        stop_server(work)


def test_server_and_its_model_processes_run_at_the_given_niceness(
    small_repo: Path, tmp_path: Path
) -> None:
    work = tmp_path / "srv"
    info = start_server(small_repo, work, http_port=free_port(), grpc_port=free_port(),
                        metrics_port=free_port(), niceness=6)
    try:
        server = psutil.Process(info.pid)
        stubs = server.children(recursive=True)
        assert stubs, "the python backend runs each model in a stub process"
        # The model code runs in the stubs; Triton itself sets each model instance's relay
        # thread in the server to its configured priority (nice 0 where it may, as root).
        assert {os.getpriority(os.PRIO_PROCESS, t.id) for p in stubs for t in p.threads()} == {6}
        assert server.nice() == 6
        assert os.getpriority(os.PRIO_PROCESS, 0) != 6  # the caller keeps its own
        assert TritonClient(info.grpc_url).infer(
            "face_emotion", "1", {"FACE": FACE})["PROBS"].shape == (1, 7)
    finally:
        stop_server(work)


def test_mtls_refuses_client_without_certificate(small_repo: Path, tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    subprocess.run([str(ROOT / "cluster/certs/make-dev-ca.sh"), str(certs)], check=True,
                   capture_output=True)
    work = tmp_path / "srv"
    info = start_server(
        small_repo, work, http_port=free_port(), grpc_port=free_port(),
        metrics_port=free_port(),
        tls=ServerTLS(certs / "server.crt", certs / "server.key", certs / "ca.crt"),
    )
    try:
        trusted = TritonClient(info.grpc_url, tls=ClientTLS(
            certs / "ca.crt", certs / "client.crt", certs / "client.key"))
        assert trusted.infer("face_emotion", "1", {"FACE": FACE})["PROBS"].shape == (1, 7)
        anonymous = TritonClient(info.grpc_url, tls=ClientTLS(certs / "ca.crt"),
                                 retries=0, timeout_s=5)
        with pytest.raises(ServiceUnavailable):
            anonymous.infer("face_emotion", "1", {"FACE": FACE})
        plaintext = TritonClient(info.grpc_url, retries=0, timeout_s=5)
        with pytest.raises(ServiceUnavailable):
            plaintext.infer("face_emotion", "1", {"FACE": FACE})
    finally:
        stop_server(work)


def test_cli_up_status_down(small_repo: Path, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    from trendflow.cli import main
    from trendflow.settings import get_settings

    for key in ("HTTP_PORT", "GRPC_PORT", "METRICS_PORT"):
        monkeypatch.setenv(f"TRENDFLOW_TRITON__{key}", str(free_port()))
    get_settings.cache_clear()
    work = get_settings().data_dir / "triton"
    assert main(["triton", "status"]) == 1
    assert main(["triton", "up", "--repository", str(small_repo)]) == 0
    try:
        info = read_server(work)
        assert info is not None and server_ready(info)
        assert main(["triton", "status"]) == 0
        assert main(["triton", "up", "--repository", str(small_repo)]) == 2  # already running
    finally:
        assert main(["triton", "down"]) == 0
    assert read_server(work) is None
    assert not Path(f"/proc/{info.pid}").exists()
