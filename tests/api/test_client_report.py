"""What `trendflow analyze` (and `make demo`) prints of a run's written analysis: the LLM's text
by section with its model and prompt, the template's sentences, or why there is no text."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from trendflow.api.client import AnalysisResult, print_summary


def _shown(report: list[str], info: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    print_summary(AnalysisResult(run_id="r", status="ok", error=None, price=Decimal(3),
                                 charged=Decimal(3), artifacts=None, report=report,
                                 report_info=info), out=lines.append)
    return lines


def test_the_llm_text_is_printed_by_section_with_how_it_was_written() -> None:
    sections = [{"id": "overview", "title": "Обзор", "sentences": ["Видео длится 8 с."]},
                {"id": "sound", "title": "Звук", "sentences": ["Громкость −21.4 LUFS.",
                                                             "[R1] Поднимите громкость."]}]
    info = {"engine": "llm", "llm_model": "qwen2.5-coder-1.5b-instruct-q4_k_m",
            "prompt_version": "rephrase-v1", "locale": "ru", "sections": sections,
            "recommendations": [{"id": "R1"}], "cached": False}
    lines = _shown([s for sec in sections for s in sec["sentences"]], info)
    start = lines.index("report (qwen2.5-coder-1.5b-instruct-q4_k_m, prompt rephrase-v1, ru, "
                        "3 sentences, 1 recommendations):")
    assert lines[start + 1:start + 6] == ["  Обзор", "    Видео длится 8 с.", "  Звук",
                                          "    Громкость −21.4 LUFS.",
                                          "    [R1] Поднимите громкость."]


def test_a_failed_render_says_its_code_and_the_template_says_it_is_one() -> None:
    lines = _shown([], {"error": {"code": "render_invalid",
                                  "message": "the written analysis failed; the results stand"}})
    assert ("report: not written: render_invalid: the written analysis failed; the results "
            "stand") in lines
    lines = _shown(["The video lasts 8 s."], {"engine": "template"})
    assert lines[lines.index("report (template, 1 sentences):") + 1] == "  The video lasts 8 s."
