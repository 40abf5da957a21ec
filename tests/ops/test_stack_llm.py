"""``trendflow up`` starts the local LLM server for a profile that renders with ``engine: llm``
(the supervisor's step, with the real ``llama-server``), points the gateway at it, records its
PID, and ``down``'s path stops exactly that PID; other profiles and configured endpoints skip it
with the reason."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from trendflow.errors import LlmUnavailable
from trendflow.processes import pid_alive
from trendflow.render.models import get_model
from trendflow.render.server import NOT_BUILT, server_binary
from trendflow.settings import LlmSettings, Settings
from trendflow.stack import _Supervisor, stop_recorded

SMALLEST = "smollm2-135m-instruct-q4_1"  # starts in seconds; the step is the same for any


def _supervisor(tmp_path: Path, *, needs_llm: bool, **llm: object) -> _Supervisor:
    settings = Settings(data_dir=tmp_path / "data",
                        llm={"local_model": SMALLEST,
                             **llm})
    sup = _Supervisor(settings, triton_mode="off", profile="writer")
    sup._needs_llm = needs_llm
    return sup


def test_a_template_profile_or_a_configured_endpoint_starts_no_llm(tmp_path: Path) -> None:
    sup = _supervisor(tmp_path, needs_llm=False)
    sup.start_llm()
    assert sup.state.llm == {"started": False,
                             "reason": "profile 'writer' does not render with engine 'llm'"}
    sup = _supervisor(tmp_path, needs_llm=True, base_url="http://127.0.0.1:9/v1")
    sup.start_llm()
    assert sup.state.llm["started"] is False and "llm.base_url" in sup.state.llm["reason"]


def test_an_llm_profile_starts_the_local_server_and_down_stops_its_pid(tmp_path: Path) -> None:
    try:
        server_binary()
    except LlmUnavailable:
        pytest.skip(NOT_BUILT)
    if not get_model(SMALLEST).path(LlmSettings().models_dir).is_file():
        pytest.skip(f"the local model {SMALLEST} is not fetched: `make llm` fetches it")
    sup = _supervisor(tmp_path, needs_llm=True)
    sup.start_llm()
    llm = sup.state.llm
    try:
        assert llm["started"] is True and llm["model"] == SMALLEST
        assert sup.settings.llm.base_url == llm["url"]  # what the API and scheduler call
        assert httpx.get(llm["url"].removesuffix("/v1") + "/health", timeout=5).status_code == 200
        models = httpx.get(llm["url"] + "/models", timeout=5).json()
        assert SMALLEST in str(models)
    finally:
        lines = stop_recorded(sup.state, grace_s=10)
    assert lines == [f"llm {llm['pid']}: stopped"]
    assert not pid_alive(llm["pid"])
