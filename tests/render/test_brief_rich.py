"""The brief of a run with every component of the built-in profiles: enough findings for the
default 50–60 sentences, each number traceable to the arrays, a timeline of the video and the
forecast with its what-ifs."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.render.helpers import fast_arrays, profile_components, rich_arrays
from trendflow.contracts.arrays import check_arrays
from trendflow.contracts.schemas import load_component_schema
from trendflow.forecast.present import forecast_json
from trendflow.render.brief import NORMS, Brief, build_brief
from trendflow.render.validator import numbers_in, validate

LOCALES = ("ru", "en")


def _echo(brief: Brief) -> list[tuple[str, list[str]]]:
    return [(sid, [st.text for st in sts]) for sid, sts in brief.sections()]


@pytest.mark.parametrize("profile", ["fast", "full", "prediction"])
def test_the_rich_arrays_keep_the_component_schemas(profile: str) -> None:
    arrays = rich_arrays(profile_components(profile))
    assert set(arrays) == set(profile_components(profile))
    for name, keys in arrays.items():
        assert check_arrays(load_component_schema(name).specs, keys, where=name) == []


@pytest.mark.parametrize("profile", ["full", "prediction"])
@pytest.mark.parametrize("locale", LOCALES)
def test_a_full_or_prediction_run_fills_the_default_range(profile: str, locale: str) -> None:
    arrays = rich_arrays(profile_components(profile))
    every = build_brief(arrays, locale=locale, sentences_min=50, sentences_max=1000)
    assert len(every.statements) >= 60
    brief = build_brief(arrays, locale=locale, sentences_min=50, sentences_max=60)
    assert 50 <= len(brief.statements) <= 60
    # every recommendation found is kept, and keeps its [Rn] marker
    found = [st for st in every.statements if st.recommendation]
    kept = [st for st in brief.statements if st.recommendation]
    assert found and [st.text for st in kept] == [st.text for st in found]
    assert [r.id for r in brief.recommendations] == [st.recommendation for st in kept]
    # fillers go before details, details before the core; every core finding stays
    texts = {st.text for st in brief.statements}
    kept_worst = max(st.priority for st in brief.statements)
    assert all(st.priority >= kept_worst for st in every.statements if st.text not in texts)
    assert all(st.text in texts for st in every.statements if st.priority == 0)
    assert [st.id for st in brief.statements] == [f"s{i}" for i in
                                                   range(1, len(brief.statements) + 1)]


@pytest.mark.parametrize("profile", ["fast", "full", "prediction"])
@pytest.mark.parametrize("locale", LOCALES)
def test_every_statement_passes_the_validator_as_its_own_sentence(profile: str,
                                                                  locale: str) -> None:
    brief = build_brief(rich_arrays(profile_components(profile)), locale=locale,
                        sentences_min=1, sentences_max=1000)
    verdict = validate(brief, _echo(brief))
    assert verdict.ok, verdict.problems
    for st in brief.statements:  # the validator reads every digit: none is glued to a word
        digits = re.findall(r"\d+(?:\.\d+)?", re.sub(r"\[R\d+\]", "", st.text))
        assert len(numbers_in(st.text)) == len(digits), st.text


@pytest.mark.parametrize("profile", ["fast", "full", "prediction"])
def test_every_number_traces_to_a_fact_or_a_named_norm(profile: str) -> None:
    arrays = rich_arrays(profile_components(profile))
    brief = build_brief(arrays, locale="en", sentences_min=1, sentences_max=1000)
    for st in brief.statements:
        shown = tuple(brief.facts[k].shown for k in st.facts)
        assert st.numbers[:len(shown)] == shown, st.text
        assert set(st.numbers[len(shown):]) <= set(NORMS), st.text
    for key, fact in brief.facts.items():  # a fact named after an NPZ scalar holds its value
        component, _, name = key.partition(".")
        value = arrays.get(component, {}).get(name)
        if value is not None and value.shape == () and value.dtype.kind in "biuf":
            assert any(np.isclose(fact.value, float(value) * s) for s in (1, 100)), key


def test_the_timeline_states_each_quarter_and_its_extremes() -> None:
    brief = build_brief(rich_arrays(profile_components("full")), locale="en",
                        sentences_min=1, sentences_max=1000)
    timeline = [st.text for st in brief.statements if st.section == "timeline"]
    for a, b in ((0, 12), (12, 24), (24, 36), (36, 48)):
        span = [t for t in timeline if t.startswith(f"From {a} to {b} s")]
        assert len(span) == 5  # cuts, motion, loudness, speech, brightness
    # the clip is louder, busier and moves more in its third quarter, quieter in the last
    assert any(t.startswith("The loudest span runs from 24 to 36 s") for t in timeline)
    assert any(t.startswith("The quietest span runs from 36 to 48 s") for t in timeline)
    assert any(t.startswith("The edit is busiest from 24 to 36 s") for t in timeline)
    assert any(t.startswith("Motion peaks at 26.5 s") for t in timeline)


def test_a_long_video_is_cut_into_whole_minutes() -> None:
    arrays = fast_arrays()
    arrays["metadata_features"]["duration_s"] = np.float64(610.0)
    arrays["shot_detection"]["cut_timestamps_s"] = np.arange(5.0, 600.0, 10.0)
    brief = build_brief(arrays, locale="en", sentences_min=1, sentences_max=1000)
    cuts = [st.text for st in brief.statements if st.text.startswith("From")
            and st.text.endswith("cuts.")]
    assert cuts == [f"From {a} to {a + 120} s there are 12 cuts." for a in range(0, 480, 120)] \
        + ["From 480 to 610 s there are 12 cuts."]


def test_the_forecast_states_the_interval_like_rate_and_each_what_if() -> None:
    arrays = rich_arrays(profile_components("prediction"))
    doc = forecast_json(arrays["popularity_prediction"], None)
    brief = build_brief(arrays, locale="en", sentences_min=1, sentences_max=1000)
    forecast = [st.text for st in brief.statements if st.section == "forecast"]
    assert forecast[:2] == ["The median forecast at 30 days is 8400 views.",
                            "The 80 % interval runs from 2300 to 31000 views."]
    assert "The expected like rate is 3.6 % of the views." in forecast
    whatifs = [t for t in forecast if "would be" in t]
    assert len(whatifs) == len(doc["whatifs"]) >= 3
    assert "With 15 tags, the median forecast would be" in " ".join(whatifs)
    # a recommendation whose feature has a what-if carries its predicted effect
    desc = next(r for r in brief.recommendations if r.rule == "description")
    moved = next(w for w in doc["whatifs"] if w["feature"] == "metadata_features.description_chars")
    assert desc.effect == {"target": 1000.0, "views_p50": moved["views"]["p50"],
                           "change_pct": pytest.approx(100 * (moved["change_p50_ratio"] - 1))}
    assert "Forecast with a description of 1000 characters" in desc.text


def test_a_run_without_a_forecast_has_no_forecast_section_or_effects() -> None:
    brief = build_brief(rich_arrays(profile_components("full")), locale="ru",
                        sentences_min=50, sentences_max=60)
    assert "forecast" not in dict(brief.sections())
    assert all(r.effect is None for r in brief.recommendations)


@pytest.mark.parametrize("locale", LOCALES)
def test_the_fast_brief_still_fits_a_short_text(locale: str) -> None:
    brief = build_brief(fast_arrays(), locale=locale, sentences_min=20, sentences_max=24)
    assert 20 <= len(brief.statements) <= 24
    assert validate(brief, _echo(brief)).ok


def test_each_rule_fires_on_its_finding_and_keeps_its_numbers() -> None:
    arrays = rich_arrays(profile_components("prediction"))
    faces = arrays["faces"]
    faces["face_count"] = np.where(faces["timestamps_s"] < 3, 0, faces["face_count"]).astype(
        np.int32)
    arrays["speech_activity"]["segments_s"] = arrays["speech_activity"]["segments_s"] + 3.8
    arrays["metadata_features"]["description_hashtags"] = np.int64(64)
    arrays["metadata_features"]["title_chars"] = np.int64(88)
    arrays["loudness"]["integrated_lufs"] = np.float64(-9.5)
    for locale in LOCALES:
        brief = build_brief(arrays, locale=locale, sentences_min=50, sentences_max=60)
        rules = {r.rule: r for r in brief.recommendations}
        assert {"hook_face", "hook_speech", "hashtags_many", "title_long",
                "loudness_down"} <= set(rules)
        assert rules["hook_face"].effect is not None  # the forecast's face-in-the-hook what-if
        assert rules["loudness_down"].effect is not None
        assert "hook_cut" not in rules and "hashtags_none" not in rules
        assert validate(brief, _echo(brief)).ok


def test_a_fast_speaker_is_told_the_narration_pace() -> None:
    arrays = rich_arrays(profile_components("full"))
    arrays["transcript"]["words_per_minute"] = np.float64(212.0)
    brief = build_brief(arrays, locale="en", sentences_min=50, sentences_max=60)
    rate = next(r for r in brief.recommendations if r.rule == "speech_rate")
    assert rate.text == ("Speak slower: 212 words per minute, while clear narration runs at "
                         "120 to 160.")
    assert validate(brief, _echo(brief)).ok
