"""One client for any OpenAI-compatible ``/v1/chat/completions`` endpoint (OpenAI, vLLM, Ray
Serve LLM, llama.cpp's server, Ollama), on httpx.

Base URL, API key, model and timeouts come from ``settings.llm``. Network errors, timeouts and
5xx are retried ``llm.retries`` times with doubling backoff; a 429 is never retried: it becomes
:class:`LlmRateLimited` with the endpoint's ``Retry-After``. Any other 4xx, and an answer that is
not the protocol's JSON (or whose content is not JSON), is :class:`LlmBadResponse`. Token usage
comes back with every answer.

::

    LlmError tree (trendflow.errors.RenderError)
    ├── LlmRateLimited   429, at once
    ├── LlmUnavailable   connect refused / 5xx, after the retries
    ├── LlmTimeout       no answer in llm.timeout_s, after the retries
    └── LlmBadResponse   4xx other than 429, malformed JSON, no choices
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from trendflow.errors import (
    LlmBadResponse,
    LlmNotConfigured,
    LlmRateLimited,
    LlmTimeout,
    LlmUnavailable,
)
from trendflow.settings import LlmSettings


def require_llm(llm: LlmSettings) -> None:
    """Refuse ``engine: llm`` when this deployment has no LLM (``llm_not_configured``, 422):
    at a run's creation and estimate, and before a render — never a silent template."""
    if not llm.enabled:
        raise LlmNotConfigured(
            "this deployment has no LLM (TRENDFLOW_LLM__ENABLED=false): a profile with engine "
            "'llm' cannot be rendered; use engine 'template' or configure "
            "TRENDFLOW_LLM__BASE_URL", engine="llm")


@dataclass(frozen=True, slots=True)
class Completion:
    content: dict[str, Any]  # the parsed JSON answer
    model: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    attempts: int  # HTTP requests made (1 + retries used)


class LlmGateway:
    """A synchronous chat-completions client; ``close()`` (or ``with``) releases it."""

    def __init__(self, settings: LlmSettings, *, base_url: str,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        headers = {}
        if settings.api_key is not None:
            headers["Authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, transport=transport,
            timeout=httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s))

    def __enter__(self) -> LlmGateway:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def complete_json(self, messages: list[dict[str, str]], schema: dict[str, Any], *,
                      name: str = "report", max_tokens: int | None = None) -> Completion:
        """One structured answer to ``messages`` that follows ``schema``."""
        body: dict[str, Any] = {
            "model": self.settings.model_name, "messages": messages,
            "temperature": self.settings.temperature,
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": name, "schema": schema}},
        }
        if max_tokens:
            body["max_tokens"] = max_tokens
        if self.settings.seed is not None:
            body["seed"] = self.settings.seed
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.post("/chat/completions", json=body)
            except httpx.TimeoutException as exc:
                failure: Exception = LlmTimeout(
                    f"the LLM at {self._http.base_url} did not answer in "
                    f"{self.settings.timeout_s:g} s", attempts=attempt)
                cause: Exception = exc
            except httpx.TransportError as exc:
                failure = LlmUnavailable(f"the LLM at {self._http.base_url} cannot be reached: "
                                         f"{type(exc).__name__}", attempts=attempt)
                cause = exc
            else:
                if response.status_code == 429:
                    raise LlmRateLimited(
                        "the LLM endpoint is rate-limiting requests: try again later",
                        retry_after_s=_retry_after(response), attempts=attempt)
                if response.status_code < 500:
                    return self._parse(response, started, attempt)
                failure = LlmUnavailable(f"the LLM at {self._http.base_url} answered "
                                         f"{response.status_code}", status=response.status_code,
                                         attempts=attempt)
                cause = failure
            if attempt > self.settings.retries:
                raise failure from cause
            time.sleep(self.settings.backoff_s * 2 ** (attempt - 1))

    def _parse(self, response: httpx.Response, started: float, attempt: int) -> Completion:
        if response.status_code >= 400:
            raise LlmBadResponse(f"the LLM refused the request ({response.status_code}): "
                                 f"{response.text[:300]}", status=response.status_code)
        try:
            data = response.json()
            message = data["choices"][0]["message"]["content"]
            content = json.loads(message)
            usage = data.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LlmBadResponse("the LLM's answer is not chat-completion JSON with a JSON "
                                 "message", body=response.text[:300]) from exc
        if not isinstance(content, dict):
            raise LlmBadResponse("the LLM's message is not a JSON object")
        return Completion(content, str(data.get("model", self.settings.model_name)),
                          int(usage.get("prompt_tokens", 0)),
                          int(usage.get("completion_tokens", 0)),
                          time.monotonic() - started, attempt)


def _retry_after(response: httpx.Response) -> int:
    try:
        return max(1, int(float(response.headers.get("Retry-After", "60"))))
    except ValueError:
        return 60


__all__ = ["Completion", "LlmGateway", "require_llm"]
