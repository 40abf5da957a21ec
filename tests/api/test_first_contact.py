"""What a newcomer meets first: `up` says why it failed, `up` right after `down` works, an upload
keeps its name."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.api.test_routes import upload
from tests.fixtures.api import ApiHarness
from trendflow import stack
from trendflow.errors import ConfigError, ServiceUnavailable
from trendflow.media import synth
from trendflow.settings import Settings


def _time_wait_port() -> int:
    """A loopback port nothing listens on any more, whose last connection lingers in TIME_WAIT
    (the server side closed first, as a server stopped by `down` does)."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's own
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = int(listener.getsockname()[1])
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    served.close()  # the server closes first: its end goes to TIME_WAIT
    client.recv(1)
    client.close()
    listener.close()
    return port


def test_a_port_in_time_wait_is_free_and_a_listening_one_is_not() -> None:
    port = _time_wait_port()
    stack._check_port(port, "API", "TRENDFLOW_API__PORT")  # restart right after `down`
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(ConfigError, match="in use"):
            stack._check_port(busy.getsockname()[1], "API", "TRENDFLOW_API__PORT")


def test_up_shows_the_supervisors_own_error(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with pytest.raises(ServiceUnavailable) as err:
        # The supervisor reads its settings from the environment: this one cannot start.
        stack.up(settings, env={"TRENDFLOW_API__PORT": "not-a-port"}, timeout_s=120)
    message = err.value.message
    assert "before it was ready" in message
    assert "api.port" in message and "not-a-port" in message  # pydantic's own words, from the log


async def test_upload_keeps_its_filename(api: ApiHarness, scene_cuts_clip: synth.Clip,
                                         tmp_path: Path) -> None:
    named = tmp_path / "My clip (final).mp4"
    named.write_bytes(scene_cuts_clip.path.read_bytes())
    r = await upload(api, "alice", named)
    assert r.status_code == 201, r.text
    up = r.json()
    assert up["filename"] == "My_clip__final_.mp4"
    got = await api.client.get(f"/api/uploads/{up['upload_id']}", headers=api["alice"].headers)
    assert got.json()["filename"] == "My_clip__final_.mp4"  # kept in the upload's record
    est = await api.client.post("/api/estimate", headers=api["alice"].headers,
                                json={"upload_id": up["upload_id"], "profile_id": "fast"})
    assert est.status_code == 200, est.text  # the run path finds the stored file


def test_the_stacks_ray_ports_are_its_own_and_a_taken_one_is_refused(tmp_path: Path) -> None:
    """Ray's fixed defaults (6379, 8265's agent 52365, Ray Client 10001) are never assumed: a
    0 becomes a free port, so a second Ray on the machine cannot take the stack's job agent; a
    fixed port that is taken is refused, naming its setting, before anything starts."""
    sup = stack._Supervisor(Settings(data_dir=tmp_path), triton_mode="off", profile="fast")
    ports = sup.ray_ports()
    assert set(ports) == {"port", "dashboard-port", "dashboard-agent-listen-port",
                          "ray-client-server-port", "metrics-export-port"}
    assert len(set(ports.values())) == len(ports)
    assert not {6379, 52365, 10001} & set(ports.values())
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        settings = Settings(data_dir=tmp_path, api={"ray_dashboard_agent_port": taken})
        sup = stack._Supervisor(settings, triton_mode="off", profile="fast")
        with pytest.raises(ConfigError, match="TRENDFLOW_API__RAY_DASHBOARD_AGENT_PORT"):
            sup.ray_ports()
    settings = Settings(data_dir=tmp_path, api={"ray_port": 40123, "ray_client_port": 40123})
    with pytest.raises(ConfigError, match="must differ"):
        stack._Supervisor(settings, triton_mode="off", profile="fast").ray_ports()
