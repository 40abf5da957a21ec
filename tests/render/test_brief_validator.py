"""The brief states the run's facts with their norms and derives recommendations; the validator
accepts a faithful text and names each way an unfaithful one breaks it."""

from __future__ import annotations

from tests.render.helpers import fast_arrays
from trendflow.render.brief import build_brief
from trendflow.render.validator import numbers_in, validate


def _sections(brief, texts=None):  # type: ignore[no-untyped-def]
    texts = texts or {}
    return [(sid, [texts.get(st.id, st.text) for st in sts]) for sid, sts in brief.sections()]


def test_brief_states_findings_with_norms_and_recommends_from_them() -> None:
    brief = build_brief(fast_arrays(), locale="en", sentences_min=20, sentences_max=60)
    text = " ".join(st.text for st in brief.statements)
    assert "-21.4 LUFS" in text and "-14 LUFS" in text
    rules = {r.rule for r in brief.recommendations}
    # quiet, peaky, no cut in the hook, slow, static, dark, short title and description, no tags
    assert {"loudness_up", "true_peak", "hook_cut", "pace", "static", "brightness",
            "title_short", "description", "tags"} <= rules
    up = next(r for r in brief.recommendations if r.rule == "loudness_up")
    assert "loudness.integrated_lufs" in up.evidence and "7.4 dB" in up.text
    for st in brief.statements:
        if st.recommendation:
            assert st.text.startswith(f"[{st.recommendation}]")


def test_fewer_sentences_asked_drop_details_first() -> None:
    full = build_brief(fast_arrays(), locale="ru", sentences_min=20, sentences_max=100)
    short = build_brief(fast_arrays(), locale="ru", sentences_min=10, sentences_max=10)
    assert len(short.statements) == 10 < len(full.statements)
    assert all(st.priority == 0 for st in short.statements)
    assert [st.id for st in short.statements] == [f"s{i}" for i in range(1, 11)]


def test_a_faithful_text_passes_in_both_locales() -> None:
    for locale in ("ru", "en"):
        brief = build_brief(fast_arrays(), locale=locale, sentences_min=20, sentences_max=60)
        assert validate(brief, _sections(brief)).ok


def test_the_validator_names_each_unfaithful_change() -> None:
    brief = build_brief(fast_arrays(), locale="ru", sentences_min=20, sentences_max=60)
    lufs = next(st for st in brief.statements if "-21.4" in st.text)
    rec = next(st for st in brief.statements if st.recommendation)
    verdict = validate(brief, _sections(brief, {
        lufs.id: "Громкость -21.4 LUFS при норме -14 LUFS, а длится ролик 777 минут.",
        rec.id: rec.text.replace(f"[{rec.recommendation}]", "[R99]"),
    }))
    assert not verdict.ok and verdict.ungrounded == 1
    joined = "\n".join(verdict.problems)
    assert "has the number 777" in joined
    assert "[R99], which is no recommendation" in joined
    assert f"must keep the marker [{rec.recommendation}]" in joined
    english = validate(brief, _sections(brief, {st.id: "Loudness is fine." for st in
                                                brief.statements if not st.numbers}))
    dropped = validate(brief, [(sid, sents[:-1]) for sid, sents in _sections(brief)])
    assert f"exactly {len(brief.statements)} sentences" in "\n".join(dropped.problems)
    lost = validate(brief, _sections(brief, {lufs.id: "Громкость ниже нормы."}))
    assert any("lost the number -21.4" in p for p in lost.problems)
    assert english.ok or any("Russian" in p for p in english.problems)


def test_numbers_are_read_with_either_decimal_mark_and_rounding() -> None:
    assert numbers_in("громкость −21,4 LUFS и 3 склейки") == [(-21.4, 1), (3.0, 0)]
    brief = build_brief(fast_arrays(), locale="ru", sentences_min=20, sentences_max=60)
    lufs = next(st for st in brief.statements if "-21.4" in st.text)
    ok = validate(brief, _sections(brief, {lufs.id: lufs.text.replace("-21.4", "−21,4")}))
    assert ok.ok, ok.problems


def test_thousands_grouped_by_a_space_are_one_number() -> None:
    # Russian groups thousands with a (no-break) space: a faithful "12 400" is the fact 12400.
    assert numbers_in("Прогноз: 12 400 просмотров, 1\u00a0250 лайков и 3 склейки") == [
        (12400.0, 0), (1250.0, 0), (3.0, 0)]
    assert numbers_in("за 3 с, 45 %") == [(3.0, 0), (45.0, 0)]
