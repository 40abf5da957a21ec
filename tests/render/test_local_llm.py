"""The written analysis by the real local ``llama-server`` and the default local model.

Needs the server built and the model fetched (``make llm``, part of ``make install``): the
test skips, saying so, when either is missing. The report of a run of the ``fast`` components
has a sentence count in the asked range, only numbers that its brief holds, the asked
language's script, and a second request is answered from the cache: the server's own token
counters do not move.
"""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.test_delete import execute
from tests.api.test_routes import FAST, upload
from tests.fixtures.api import ApiHarness
from tests.fixtures.media import MediaLibrary
from trendflow.db.repositories import runs as runs_repo
from trendflow.errors import LlmUnavailable
from trendflow.render.brief import build_brief
from trendflow.render.models import get_model
from trendflow.render.server import (
    NOT_BUILT,
    LlmServerInfo,
    server_binary,
    start_server,
    stop_server,
    tokens_processed,
)
from trendflow.render.service import load_components
from trendflow.render.validator import numbers_in
from trendflow.settings import LlmSettings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmServerInfo]:
    try:
        server_binary()
    except LlmUnavailable:
        pytest.skip(NOT_BUILT)
    llm = LlmSettings()
    model = get_model(llm.local_model)
    if not model.path(llm.models_dir.resolve()).is_file():
        pytest.skip(f"the local model {model.name} is not fetched: `make llm` fetches it")
    work = tmp_path_factory.mktemp("llama")
    info = start_server(llm, work, port=_free_port())
    try:
        yield info
    finally:
        stop_server(work)


async def test_the_local_model_writes_a_grounded_cached_russian_report(
    api: ApiHarness, media: MediaLibrary, llama: LlmServerInfo, tmp_path: Path
) -> None:
    alice = api["alice"].headers
    body = {"profile_id": "alice-llm", "name": "written by the local model",
            "components": [{"name": n} for n in FAST],
            "render": {"engine": "llm", "prompt_version": "rephrase-v1", "locale": "en"}}
    assert (await api.client.put("/api/profiles/alice-llm", json=body,
                                 headers=alice)).status_code == 200
    up = await upload(api, "alice", media.path("scene_cuts"), {"title": "Cuts", "tags": ["a"]})
    run = await api.client.post("/api/runs", headers=alice, json={
        "upload_id": up.json()["upload_id"], "profile_id": "alice-llm"})
    assert run.status_code == 201, run.text
    run_id = run.json()["run_id"]
    await execute(api, run_id, tmp_path / "run")
    api.ctx.settings.llm.base_url = llama.base_url
    api.ctx.settings.llm.model = llama.model
    assert (await api.client.patch("/api/me/settings", headers=alice, json={
        "report_locale": "ru", "report_sentences_min": 20, "report_sentences_max": 24})
    ).status_code == 200

    report_url = f"/api/runs/{run_id}/report"
    first = await api.client.get(report_url, headers=alice, timeout=1800)
    assert first.status_code == 200, first.text
    report = first.json()
    assert report["engine"] == "llm" and report["cached"] is False
    assert report["locale"] == "ru" and report["llm_model"] == llama.model
    sentences = report["sentences"]
    assert 20 <= len(sentences) <= 24
    letters = re.findall(r"[^\W\d_]", report["text"])
    cyrillic = [c for c in letters if "\u0400" <= c <= "\u04ff"]
    assert len(cyrillic) / len(letters) > 0.8, report["text"][:300]

    # every number the text gives is one of the numbers the run's brief holds
    async with api.ctx.db.acquire() as conn:
        row = await runs_repo.get_run(conn, run_id=uuid.UUID(run_id))
    parts = await load_components(api.ctx.store, row)
    brief = build_brief({n: a for n, (status, _, a) in parts.items() if status == "ok"},
                        locale="ru", sentences_min=20, sentences_max=24)
    allowed = {value for st in brief.statements for n in st.numbers
               for value, _ in numbers_in(n)}
    assert allowed
    for sentence in sentences:
        for value, decimals in numbers_in(sentence):  # as written, within its rounding
            assert any(abs(value - a) <= 0.5 * 10**-decimals + 1e-9 for a in allowed), (
                value, sentence)

    before = tokens_processed(llama)
    again = await api.client.get(report_url, headers=alice)
    assert again.status_code == 200 and again.json()["cached"] is True
    assert again.json()["sentences"] == sentences
    assert tokens_processed(llama) == before  # no request reached the server
