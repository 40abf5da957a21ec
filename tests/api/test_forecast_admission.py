"""The forecast is promised only with a trained predictor served: the `prediction` profile is
refused at pricing and at creation otherwise (``model_not_found``, nothing reserved), and
accepted once this deployment's repository and Triton serve the predictor."""

from __future__ import annotations

from pathlib import Path

from tests.api.test_routes import balance, count_runs
from tests.fixtures.api import ApiHarness
from tests.fixtures.triton import TritonServer, copy_repo_sources
from trendflow.triton.server import free_port

BODY = {"youtube_url": "https://youtu.be/dQw4w9WgXcQ",
        "profile_id": "prediction"}


async def test_the_prediction_profile_is_refused_while_no_trained_predictor_is_served(
    api: ApiHarness, tmp_path: Path
) -> None:
    # A repository with the predictor's code and config but no trained weights (a fresh
    # clone before `trendflow models build`); no server answers either.
    repo = tmp_path / "triton_repo"
    copy_repo_sources(repo, ("popularity_predictor",))
    triton = api.ctx.settings.triton
    triton.repository, triton.url = repo, f"127.0.0.1:{free_port()}"
    before = (await balance(api, "alice"), await count_runs(api))
    for path in ("/api/estimate", "/api/runs"):
        r = await api.client.post(path, json=BODY, headers=api["alice"].headers)
        assert (r.status_code, r.json()["code"]) == (404, "model_not_found"), (path, r.text)
        assert r.json()["details"]["component"] == "popularity_prediction"
        assert "trained popularity predictor" in r.json()["message"]
        assert "popularity_predictor:1" in r.json()["message"]
    assert (await balance(api, "alice"), await count_runs(api)) == before
    # A profile without the forecast is not affected by the rule.
    fast = {**BODY, "profile_id": "fast"}
    r = await api.client.post("/api/estimate", json=fast, headers=api["alice"].headers)
    assert r.status_code == 200, r.text


async def test_the_prediction_profile_is_accepted_once_the_predictor_is_served(
    api: ApiHarness, triton_server: TritonServer
) -> None:
    triton = api.ctx.settings.triton
    triton.repository = triton_server.repository
    triton.url, triton.protocol = triton_server.info.grpc_url, "grpc"
    r = await api.client.post("/api/estimate", json=BODY, headers=api["alice"].headers)
    assert r.status_code == 200, r.text
    assert "popularity_prediction" in r.json()["components"]
    before_runs = await count_runs(api)
    r = await api.client.post("/api/runs", json=BODY, headers=api["alice"].headers)
    assert r.status_code in (200, 201, 202), r.text
    assert await count_runs(api) == before_runs + 1
    assert (await balance(api, "alice"))[1] > 0  # its credits are held
