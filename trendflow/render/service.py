"""The render stage: a run's results → its written analysis (``engine: llm`` or ``template``).

:func:`render_brief` asks the LLM to rewrite the brief's statements one to one under a JSON
schema (sections → sentences, the count fixed per section), validates the answer
(:mod:`trendflow.render.validator`), retries once — rewriting only the sentences that broke a
rule, with the complaints — then fails with ``render_invalid``, never a silent template.
:func:`run_report` is the report endpoint's body: the cached text of the same request, or a
render made now and cached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

from trendflow.api import report as template
from trendflow.contracts.keys import artifact_key, manifest_key
from trendflow.contracts.manifest import Manifest
from trendflow.contracts.npz import decode_npz
from trendflow.contracts.profile import RenderSettings
from trendflow.contracts.schemas import load_component_schema
from trendflow.db.repositories import render_cache as cache_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.db.repositories import users as users_repo
from trendflow.errors import ArtifactNotFound, RenderInvalid, RunNotReady
from trendflow.render.brief import SECTION_TITLES, Brief, Locale, build_brief
from trendflow.render.gateway import LlmGateway, require_llm
from trendflow.render.prompts import Prompt, load_prompt
from trendflow.render.validator import validate
from trendflow.settings import LlmSettings, Settings
from trendflow.storage.base import ResultStore

SENTENCES_DEFAULT = (50, 60)
SENTENCES_ALLOWED = (20, 100)
LOCALES: tuple[Locale, ...] = ("ru", "en")
_LANGUAGE = {"ru": "Russian", "en": "English"}
TOKENS_PER_SENTENCE = 120  # a long Russian sentence is ~60 tokens in Qwen's vocabulary


@dataclass(frozen=True, slots=True)
class Rendered:
    sections: list[tuple[str, list[str]]]
    prompt_tokens: int
    completion_tokens: int
    attempts: int  # LLM answers asked for (1, or 2 after a failed validation)
    seconds: float
    model: str
    first_try_ok: bool
    ungrounded: int


def response_schema(brief: Brief) -> dict[str, Any]:
    """The JSON schema of the answer: the brief's sections in order, each with exactly as many
    sentences as it has statements."""
    sections = [
        {"type": "object", "additionalProperties": False, "required": ["id", "sentences"],
         "properties": {"id": {"const": sid},
                        "sentences": {"type": "array", "items": {"type": "string"},
                                      "minItems": len(sts), "maxItems": len(sts)}}}
        for sid, sts in brief.sections()
    ]
    return {"type": "object", "additionalProperties": False, "required": ["sections"],
            "properties": {"sections": {"type": "array", "prefixItems": sections,
                                        "minItems": len(sections), "maxItems": len(sections)}}}


def _statements_text(brief: Brief) -> str:
    lines = []
    for sid, sts in brief.sections():
        lines.append(f"[section {sid}]")
        lines += [f"{st.id[1:]}. {st.text}" for st in sts]
    return "\n".join(lines)


def _answer_sections(content: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    out = []
    for sec in content.get("sections") or []:
        if isinstance(sec, dict):
            sentences = [str(s).strip() for s in sec.get("sentences") or []]
            out.append((str(sec.get("id")), sentences))
    return out


def render_brief(brief: Brief, prompt: Prompt, gateway: LlmGateway) -> Rendered:
    """The brief written by the LLM and validated, with one retry: the sentences that broke a
    rule (all of them if the text as a whole did) are rewritten from their statements, with the
    validator's complaints, and the sentences that passed are kept; then ``render_invalid``."""
    language = _LANGUAGE[brief.locale]
    messages = [
        {"role": "system", "content": prompt.system.format(language=language)},
        {"role": "user", "content": prompt.user.format(language=language,
                                                        statements=_statements_text(brief))},
    ]
    # Bounded: a small model inside a JSON string can otherwise write until the context ends.
    answer = gateway.complete_json(messages, response_schema(brief),
                                   max_tokens=TOKENS_PER_SENTENCE * len(brief.statements) + 64)
    tokens_in, tokens_out, seconds = answer.prompt_tokens, answer.completion_tokens, answer.seconds
    sections = _answer_sections(answer.content)
    verdict = validate(brief, sections)
    if verdict.ok:
        return Rendered(sections, tokens_in, tokens_out, 1, seconds, answer.model, True,
                        verdict.ungrounded)
    flat = [s for _, sents in sections for s in sents]
    if len(flat) != len(brief.statements):
        flat = [""] * len(brief.statements)
    failed = verdict.failed
    # The retry needs the rules, the complaints and the statements to rewrite, not the whole
    # first answer: a 60-sentence answer would fill a small model's context a second time.
    messages = [
        messages[0],
        {"role": "user", "content": prompt.retry.format(
            language=language, problems="\n".join(f"- {p}" for p in verdict.problems[:20]),
            # a JSON list, not numbered lines: the model copies a line's number into its answer
            count=len(failed), statements=_dump([brief.statements[i - 1].text for i in failed]))},
    ]
    repair = gateway.complete_json(messages, _repair_schema(len(failed)), name="repair",
                                   max_tokens=TOKENS_PER_SENTENCE * len(failed) + 64)
    tokens_in += repair.prompt_tokens
    tokens_out += repair.completion_tokens
    seconds += repair.seconds
    rewritten = [str(s).strip() for s in repair.content.get("sentences") or []]
    for i, sentence in zip(failed, rewritten, strict=False):
        flat[i - 1] = sentence
    sections, at = [], 0
    for sid, sts in brief.sections():
        sections.append((sid, flat[at:at + len(sts)]))
        at += len(sts)
    verdict = validate(brief, sections)
    if not verdict.ok:
        raise RenderInvalid(
            f"the model's text failed the validator twice ({len(verdict.problems)} problems)",
            problems=list(verdict.problems[:20]), attempts=2, ungrounded=verdict.ungrounded)
    return Rendered(sections, tokens_in, tokens_out, 2, seconds, repair.model, False,
                    verdict.ungrounded)


def _repair_schema(count: int) -> dict[str, Any]:
    """The retry's answer: exactly ``count`` sentences, those it was asked to rewrite."""
    return {"type": "object", "additionalProperties": False, "required": ["sentences"],
            "properties": {"sentences": {"type": "array", "items": {"type": "string"},
                                         "minItems": count, "maxItems": count}}}


def _dump(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def gateway_base_url(settings: Settings) -> str:
    """The endpoint the gateway talks to: ``llm.base_url``, else the local server's."""
    llm = settings.llm
    require_llm(llm)
    return llm.base_url or f"http://127.0.0.1:{llm.port}/v1"


def sentence_range(sentences: int | None) -> tuple[int, int]:
    """The asked count (``sentences``: exactly that many) or the default range."""
    if sentences is None:
        return SENTENCES_DEFAULT
    return sentences, sentences


async def load_components(store: ResultStore, run: runs_repo.Run, *, during_run: bool = False
                          ) -> dict[str, tuple[str, str | None, dict[str, np.ndarray]]]:
    """``{component: (status, empty_reason, arrays)}`` of a finished run's NPZ files (or, with
    ``during_run``, of the components a running run has finished: its render stage)."""
    from trendflow.api.runs import artifact_run_id

    if run.status != "ok" and not during_run:
        raise RunNotReady(f"run {run.run_id} is {run.status}; a report needs a successful run",
                          status=run.status)
    source = artifact_run_id(run)
    try:
        raw = await store.get_bytes(manifest_key(run.platform_id, run.video_id, source))
    except ArtifactNotFound:
        raise RunNotReady(f"run {run.run_id} has no manifest in the store",
                          status=run.status) from None
    manifest = Manifest.from_json_bytes(raw)
    parts: dict[str, tuple[str, str | None, dict[str, np.ndarray]]] = {}
    for name, rec in sorted(manifest.components.items()):
        if rec.status not in ("ok", "empty") or not rec.artifacts:
            continue
        data = await store.get_bytes(artifact_key(run.platform_id, run.video_id, source, name))
        parts[name] = (rec.status, rec.empty_reason, decode_npz(data, where=f"{name}.npz").arrays)
    return parts


def template_report(run: runs_repo.Run, parts: Mapping[str, tuple[str, str | None,
                                                                  dict[str, np.ndarray]]]
                    ) -> dict[str, Any]:
    found: list[dict[str, Any]] = []
    for name, (_, _, arrays) in parts.items():
        units = {k: s.unit for k, s in load_component_schema(name).specs.items()}
        found += [f.as_dict() for f in template.findings(name, arrays, units)]
    sentences = template.render(parts)
    return {"run_id": run.run_id, "engine": template.ENGINE,
            "template_version": template.TEMPLATE_VERSION, "sentences": sentences,
            "text": " ".join(sentences), "findings": found}


@dataclass(frozen=True, slots=True)
class PendingRender:
    """An LLM report to write: its cache key, brief and prompt (:func:`prepare_report`)."""

    key: cache_repo.RenderKey
    brief: Brief
    prompt: Prompt
    llm: LlmSettings
    base_url: str


async def prepare_report(conn: asyncpg.Connection, store: ResultStore, settings: Settings,
                         run: runs_repo.Run, *, locale: str | None = None,
                         sentences: int | None = None, during_run: bool = False
                         ) -> dict[str, Any] | PendingRender:
    """The report of ``run`` when it needs no LLM call (the template's, or the cached text of
    the same request), else what :func:`write_report` needs to write it.

    Its language and length: ``locale`` / ``sentences`` when asked, else the run owner's
    account settings (``report_locale``, ``report_sentences_min…max``), else the profile's
    locale and the default range (a run whose owner is gone). ``during_run``: the run's own
    render stage (:mod:`trendflow.actors.rendering`), before the run has ended.
    """
    render = RenderSettings.model_validate(run.profile_config["render"])
    parts = await load_components(store, run, during_run=during_run)
    if render.engine == "template":
        return template_report(run, parts)
    assert render.prompt_version is not None  # RenderSettings requires it for llm
    account = (None if run.user_id is None
               else await users_repo.get_settings(conn, user_id=run.user_id))
    if locale is None:
        locale = render.locale if account is None else account.report_locale
    chosen: Locale = "ru" if locale.startswith("ru") else "en"
    if sentences is None and account is not None:
        lo, hi = account.report_sentences_min, account.report_sentences_max
    else:
        lo, hi = sentence_range(sentences)
    base_url = gateway_base_url(settings)
    prompt = load_prompt(render.prompt_version)
    model = render.llm_model or settings.llm.model_name
    key = cache_repo.RenderKey(run.platform_id, run.video_id, run.run_id,
                               render.render_profile_id, model, prompt.hash, chosen, lo, hi)
    cached = await cache_repo.get_render(conn, key=key)
    if cached is not None:
        return {**cached.record, "cached": True}
    arrays = {name: a for name, (status, _, a) in parts.items() if status == "ok"}
    brief = build_brief(arrays, locale=chosen, sentences_min=lo, sentences_max=hi)
    if len(brief.statements) < lo:
        raise RenderInvalid(f"the run's results hold {len(brief.statements)} statements, fewer "
                            f"than the {lo} sentences asked: ask for fewer, or analyse with "
                            "more components", statements=len(brief.statements), asked=lo)
    llm = settings.llm.model_copy(update={"model": model})
    return PendingRender(key, brief, prompt, llm, base_url)


async def write_report(pending: PendingRender) -> dict[str, Any]:
    """The LLM's text of ``pending`` as a render record (no database connection is held: the
    blocking gateway call runs in a thread)."""
    started = time.monotonic()

    def _render() -> Rendered:
        with LlmGateway(pending.llm, base_url=pending.base_url) as gateway:
            return render_brief(pending.brief, pending.prompt, gateway)

    done = await asyncio.to_thread(_render)
    brief, prompt, key = pending.brief, pending.prompt, pending.key
    titles = SECTION_TITLES[brief.locale]
    all_sentences = [s for _, sents in done.sections for s in sents]
    return {
        "run_id": str(key.run_id), "engine": "llm", "locale": brief.locale,
        "llm_model": key.llm_model, "prompt_version": prompt.version, "prompt_hash": prompt.hash,
        "sections": [{"id": sid, "title": titles[sid], "sentences": sents}
                     for sid, sents in done.sections],
        "sentences": all_sentences, "text": " ".join(all_sentences),
        "recommendations": [r.as_dict() for r in brief.recommendations],
        "facts": [f.as_dict() for f in brief.facts.values()],
        "usage": {"prompt_tokens": done.prompt_tokens,
                  "completion_tokens": done.completion_tokens},
        "attempts": done.attempts, "seconds": round(time.monotonic() - started, 3),
    }


async def store_report(conn: asyncpg.Connection, pending: PendingRender,
                       record: dict[str, Any]) -> dict[str, Any]:
    """Cache ``record`` under ``pending``'s key; the report as answered (``cached: false``)."""
    await cache_repo.put_render(conn, key=pending.key, engine="llm",
                                prompt_version=pending.prompt.version, record=record)
    return {**record, "cached": False}


async def run_report(conn: asyncpg.Connection, store: ResultStore, settings: Settings,
                     run: runs_repo.Run, *, locale: str | None = None,
                     sentences: int | None = None) -> dict[str, Any]:
    """The report of a finished ``run`` (the report endpoint): the template's, or the LLM's
    from the cache or rendered now and cached (:func:`prepare_report` for the choices)."""
    ready = await prepare_report(conn, store, settings, run, locale=locale, sentences=sentences)
    if isinstance(ready, dict):
        return ready
    return await store_report(conn, ready, await write_report(ready))


def llm_work_dir(settings: Settings) -> Path:
    """Where the local LLM server keeps its PID file and log."""
    return settings.data_dir.resolve() / "stack" / "llm"


__all__ = ["SENTENCES_ALLOWED", "SENTENCES_DEFAULT", "PendingRender", "Rendered",
           "gateway_base_url", "llm_work_dir", "load_components", "prepare_report",
           "render_brief", "response_schema", "run_report", "sentence_range", "store_report",
           "template_report", "write_report"]
