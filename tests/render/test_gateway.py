"""The gateway against a real loopback HTTP server speaking the OpenAI protocol: each failure
gives its stable code, with the retries as specified (5xx and timeouts twice, 429 never)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.render.helpers import completion, echo_statements, fast_arrays, openai_server
from trendflow.errors import (
    LlmBadResponse,
    LlmRateLimited,
    LlmTimeout,
    LlmUnavailable,
    RenderInvalid,
)
from trendflow.render.brief import build_brief
from trendflow.render.gateway import LlmGateway
from trendflow.render.prompts import load_prompt
from trendflow.render.service import render_brief
from trendflow.settings import LlmSettings

SCHEMA = {"type": "object"}
MESSAGES = [{"role": "user", "content": "hi"}]


def _settings(**kw: Any) -> LlmSettings:
    return LlmSettings(model="fake", backoff_s=0.01, retries=2, **kw)


def test_rate_limit_is_not_retried_and_carries_retry_after() -> None:
    with openai_server(lambda b, n: (429, {"Retry-After": "17"}, b"{}")) as (url, seen), \
            LlmGateway(_settings(), base_url=url) as gw, pytest.raises(LlmRateLimited) as err:
        gw.complete_json(MESSAGES, SCHEMA)
    assert len(seen) == 1
    assert err.value.code == "llm_rate_limited" and err.value.details["retry_after_s"] == 17


def test_server_errors_are_retried_twice_then_unavailable() -> None:
    with openai_server(lambda b, n: (500, {}, b'{"error": "boom"}')) as (url, seen), \
            LlmGateway(_settings(), base_url=url) as gw, pytest.raises(LlmUnavailable) as err:
        gw.complete_json(MESSAGES, SCHEMA)
    assert len(seen) == 3 and err.value.code == "llm_unavailable"


def test_a_5xx_then_an_answer_succeeds_on_the_retry() -> None:
    def answer(body: dict[str, Any], n: int) -> tuple[int, dict[str, str], bytes]:
        return (503, {}, b"") if n == 1 else (200, {}, completion({"ok": True}))

    with openai_server(answer) as (url, seen), LlmGateway(_settings(), base_url=url) as gw:
        done = gw.complete_json(MESSAGES, SCHEMA)
    assert done.content == {"ok": True} and done.attempts == 2 and len(seen) == 2
    assert (done.prompt_tokens, done.completion_tokens) == (10, 20)


def test_timeouts_are_retried_twice_then_llm_timeout() -> None:
    def answer(body: dict[str, Any], n: int) -> tuple[int, dict[str, str], bytes]:
        time.sleep(1.0)
        return 200, {}, completion({})

    with openai_server(answer) as (url, seen), \
            LlmGateway(_settings(timeout_s=0.3), base_url=url) as gw, \
            pytest.raises(LlmTimeout) as err:
        gw.complete_json(MESSAGES, SCHEMA)
    assert len(seen) == 3 and err.value.code == "llm_timeout"


def test_malformed_json_is_a_bad_response_without_retry() -> None:
    with openai_server(lambda b, n: (200, {}, b'{"choices": [{"message": {"content": "{no')) \
            as (url, seen), LlmGateway(_settings(), base_url=url) as gw, \
            pytest.raises(LlmBadResponse) as err:
        gw.complete_json(MESSAGES, SCHEMA)
    assert len(seen) == 1 and err.value.code == "llm_bad_response"


def test_nothing_listening_is_unavailable() -> None:
    with openai_server(lambda b, n: (200, {}, b"")) as (url, _):
        pass  # closed: the port refuses connections now
    with LlmGateway(_settings(), base_url=url) as gw, pytest.raises(LlmUnavailable):
        gw.complete_json(MESSAGES, SCHEMA)


def test_an_invalid_text_is_retried_once_with_the_complaints_then_render_invalid() -> None:
    brief = build_brief(fast_arrays(), locale="en", sentences_min=20, sentences_max=20)

    def answer(body: dict[str, Any], n: int) -> tuple[int, dict[str, str], bytes]:
        content = echo_statements(body)
        if n == 1:
            content["sections"][0]["sentences"][0] = "The video lasts 999 minutes."
        else:
            content["sentences"][0] = "It lasts 998 minutes."
        return 200, {}, completion(content)

    with openai_server(answer) as (url, seen), LlmGateway(_settings(), base_url=url) as gw, \
            pytest.raises(RenderInvalid) as err:
        render_brief(brief, load_prompt("rephrase-v1"), gw)
    assert len(seen) == 2
    assert [m["role"] for m in seen[1]["messages"]] == ["system", "user"]  # lean context
    retry = seen[1]["messages"][-1]["content"]
    assert "sentence 1 has the number 999" in retry
    # Only the broken sentence is asked again, from its own statement.
    assert seen[1]["response_format"]["json_schema"]["schema"]["properties"]["sentences"][
        "minItems"] == 1
    asked = json.loads(next(ln for ln in retry.splitlines() if ln.startswith('["')))
    assert asked == [brief.statements[0].text]
    assert err.value.code == "render_invalid" and err.value.details["attempts"] == 2
    assert "sentence 1 has the number 998" in err.value.details["problems"][0]


def test_the_retry_rewrites_only_the_broken_sentences_and_keeps_the_others() -> None:
    brief = build_brief(fast_arrays(), locale="en", sentences_min=20, sentences_max=20)
    kept = "Moreover, " + brief.statements[1].text  # a sentence the model did rephrase

    def answer(body: dict[str, Any], n: int) -> tuple[int, dict[str, str], bytes]:
        content = echo_statements(body)
        if n == 1:
            first, second = content["sections"][0], content["sections"][1]
            first["sentences"][0] = "The video lasts 999 minutes."
            (first if len(first["sentences"]) > 1 else second)["sentences"][
                1 if len(first["sentences"]) > 1 else 0] = kept
        return 200, {}, completion(content)

    with openai_server(answer) as (url, seen), LlmGateway(_settings(), base_url=url) as gw:
        done = render_brief(brief, load_prompt("rephrase-v1"), gw)
    assert len(seen) == 2 and done.attempts == 2 and not done.first_try_ok
    flat = [s for _, sents in done.sections for s in sents]
    assert flat[0] == brief.statements[0].text  # rewritten by the retry
    assert flat[1] == kept  # kept from the first answer
    assert len(flat) == len(brief.statements)
    assert seen[0]["seed"] == 0  # the same brief gives the same text


def test_a_faithful_answer_passes_with_the_count_fixed_by_the_schema() -> None:
    brief = build_brief(fast_arrays(), locale="ru", sentences_min=20, sentences_max=20)
    with openai_server(lambda b, n: (200, {}, completion(echo_statements(b)))) as (url, seen), \
            LlmGateway(_settings(), base_url=url) as gw:
        done = render_brief(brief, load_prompt("rephrase-v1"), gw)
    assert sum(len(s) for _, s in done.sections) == 20 and done.attempts == 1
    schema = seen[0]["response_format"]["json_schema"]["schema"]
    counts = [s["properties"]["sentences"]["minItems"]
              for s in schema["properties"]["sections"]["prefixItems"]]
    assert sum(counts) == 20
