"""``engine: llm`` in a deployment with no LLM is refused when priced and when created, with
``llm_not_configured`` — no silent template, no run row, no credits held."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.api.test_routes import balance, count_runs
from tests.fixtures.api import ApiHarness

LLM_RENDER = {"engine": "llm", "prompt_version": "rephrase-v1", "locale": "en"}
INLINE = {"youtube_url": "https://youtu.be/dQw4w9WgXcQ",
          "profile": {"components": [{"name": "metadata_features"}], "render": LLM_RENDER}}


async def _stored_llm_profile(api: ApiHarness) -> dict[str, Any]:
    body = {"profile_id": "alice-llm", "name": "written by the LLM",
            "components": [{"name": "metadata_features"}], "render": LLM_RENDER}
    r = await api.client.put("/api/profiles/alice-llm", json=body, headers=api["alice"].headers)
    assert r.status_code == 200, r.text
    return {"youtube_url": "https://youtu.be/dQw4w9WgXcQ",
            "profile_id": "alice-llm"}


@pytest.mark.parametrize("path", ["/api/estimate", "/api/runs"])
@pytest.mark.parametrize("stored", [False, True], ids=["inline", "stored"])
async def test_llm_profile_refused_without_an_llm(api: ApiHarness, path: str, stored: bool
                                                  ) -> None:
    body = await _stored_llm_profile(api) if stored else INLINE
    api.ctx.settings.llm.enabled = False
    before = (await balance(api, "alice"), await count_runs(api))
    r = await api.client.post(path, json=body, headers=api["alice"].headers)
    assert (r.status_code, r.json()["code"]) == (422, "llm_not_configured"), r.text
    assert "engine 'template'" in r.json()["message"]
    assert (await balance(api, "alice"), await count_runs(api)) == before


async def test_the_same_request_is_accepted_with_an_llm_and_template_without(
    api: ApiHarness,
) -> None:
    alice = api["alice"].headers
    quoted = await api.client.post("/api/estimate", json=INLINE, headers=alice)
    assert quoted.status_code == 200, quoted.text
    # the render stage is priced as its own line, part of the total
    prices = {k: Decimal(v) for k, v in quoted.json()["components"].items()}
    assert set(prices) == {"metadata_features", "render"} and prices["render"] > 0
    assert Decimal(quoted.json()["total"]) == sum(prices.values())
    api.ctx.settings.llm.enabled = False
    template = {**INLINE, "profile": {**INLINE["profile"], "render": {"engine": "template"}}}
    r = await api.client.post("/api/runs", json=template, headers=alice)
    assert r.status_code == 201, r.text
    assert set(r.json()["estimate"]["components"]) == {"metadata_features"}
