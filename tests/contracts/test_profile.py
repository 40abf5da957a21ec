"""config_hash: invariant under presentation, sensitive to every change of the work asked for."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trendflow.contracts.profile import (
    ComponentConfig,
    ModelRef,
    ProfileConfig,
    RenderSettings,
    SamplingPolicy,
    config_hash,
    model_signature,
)
from trendflow.errors import InvalidProfile

names = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(max_size=8),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
params = st.dictionaries(st.text(min_size=1, max_size=6), json_values, max_size=4)


@st.composite
def components(draw: st.DrawFn) -> list[ComponentConfig]:
    chosen = draw(st.lists(names, min_size=1, max_size=5, unique=True))
    out = [
        ComponentConfig(name=n, params=draw(params), required=draw(st.booleans())) for n in chosen
    ]
    return out


renders = st.one_of(
    st.builds(RenderSettings, engine=st.just("template"), locale=st.sampled_from(["en", "ru"])),
    st.builds(
        RenderSettings,
        engine=st.just("llm"),
        locale=st.sampled_from(["en", "ru", "en-US"]),
        prompt_version=st.sampled_from(["v1", "v2"]),
        llm_model=st.sampled_from([None, "gpt-x"]),
    ),
)
samplings = st.builds(
    SamplingPolicy,
    fps=st.sampled_from([12.0, 6.0, 24.0]),
    height=st.sampled_from([320, 360]),
)


@st.composite
def profiles(draw: st.DrawFn) -> ProfileConfig:
    return ProfileConfig(
        components=draw(components()), sampling=draw(samplings), render=draw(renders)
    )


def _reorder(value: Any, rng: random.Random) -> Any:
    """The same JSON value with every object's keys in a shuffled order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _reorder(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_reorder(v, rng) for v in value]
    return value


@given(profile=profiles(), seed=st.integers(0, 2**32 - 1))
def test_order_of_components_and_param_keys_does_not_matter(
    profile: ProfileConfig, seed: int
) -> None:
    rng = random.Random(seed)
    shuffled = list(profile.components)
    rng.shuffle(shuffled)
    shuffled = [c.model_copy(update={"params": _reorder(c.params, rng)}) for c in shuffled]
    again = ProfileConfig(components=shuffled, sampling=profile.sampling, render=profile.render)
    assert config_hash(again) == config_hash(profile)


@given(profile=profiles(), extra=names, extra_params=params)
def test_disabled_components_are_ignored(
    profile: ProfileConfig, extra: str, extra_params: dict[str, Any]
) -> None:
    if extra in {c.name for c in profile.components}:
        return
    disabled = ComponentConfig(name=extra, params=extra_params, enabled=False)
    with_disabled = profile.model_copy(update={"components": (*profile.components, disabled)})
    assert config_hash(ProfileConfig.model_validate(with_disabled.model_dump())) == config_hash(
        profile
    )


@given(profile=profiles())
def test_hash_survives_a_json_round_trip(profile: ProfileConfig) -> None:
    again = ProfileConfig.parse(json.loads(profile.model_dump_json()))
    assert config_hash(again) == config_hash(profile)


@given(profile=profiles(), seconds=st.floats(1, 1e6))
def test_a_profile_with_timeouts_is_refused(profile: ProfileConfig, seconds: float) -> None:
    # Timeouts are the operator's settings; a profile cannot carry (nor mistype) them.
    with pytest.raises(InvalidProfile, match="timeouts"):
        ProfileConfig.parse(
            {**profile.model_dump(mode="json"), "timeouts": {"component_timeout_s": seconds}}
        )


def _replace_component(profile: ProfileConfig, index: int, **update: Any) -> ProfileConfig:
    comps = list(profile.components)
    comps[index] = comps[index].model_copy(update=update)
    return ProfileConfig(components=comps, sampling=profile.sampling, render=profile.render)


@given(profile=profiles(), data=st.data())
def test_any_change_of_an_enabled_component_changes_the_hash(
    profile: ProfileConfig, data: st.DataObject
) -> None:
    before = config_hash(profile)
    index = data.draw(st.integers(0, len(profile.components) - 1))
    comp = profile.components[index]
    new_key = data.draw(st.text(min_size=1, max_size=6).filter(lambda k: k not in comp.params))
    value = data.draw(json_values)
    assert (
        config_hash(_replace_component(profile, index, params={**comp.params, new_key: value}))
        != before
    )
    if comp.params:
        key = data.draw(st.sampled_from(sorted(comp.params)))
        old = comp.params[key]
        new = data.draw(json_values.filter(lambda v: json.dumps(v) != json.dumps(old)))
        changed = _replace_component(profile, index, params={**comp.params, key: new})
        if changed.normalized() != profile.normalized():  # 1 → 1.0 is no change
            assert config_hash(changed) != before
    assert config_hash(_replace_component(profile, index, required=not comp.required)) != before
    others = {c.name for c in profile.components}
    new_name = data.draw(names.filter(lambda n: n not in others))
    assert config_hash(_replace_component(profile, index, name=new_name)) != before
    if comp.params:
        dropped = dict(list(comp.params.items())[1:])
        assert config_hash(_replace_component(profile, index, params=dropped)) != before
    if len(profile.components) > 1:
        assert config_hash(_replace_component(profile, index, enabled=False)) != before
    added = ComponentConfig(name=new_name)
    grown = ProfileConfig(
        components=(*profile.components, added), sampling=profile.sampling, render=profile.render
    )
    assert config_hash(grown) != before


@given(
    profile=profiles(),
    fps=st.floats(0.5, 60),
    height=st.integers(16, 2160),
    v=st.text(min_size=1, max_size=8),
)
@settings(max_examples=50)
def test_any_change_of_the_sampling_policy_changes_the_hash(
    profile: ProfileConfig, fps: float, height: int, v: str
) -> None:
    before = config_hash(profile)
    sampling = profile.sampling
    for update in ({"fps": fps}, {"height": height}, {"version": v}):
        changed = sampling.model_copy(update=update)
        if changed == sampling:
            continue
        assert config_hash(profile.model_copy(update={"sampling": changed})) != before


@given(profile=profiles(), other=renders)
def test_any_change_of_the_render_settings_changes_the_hash(
    profile: ProfileConfig, other: RenderSettings
) -> None:
    changed = profile.model_copy(update={"render": other})
    assert (config_hash(changed) == config_hash(profile)) == (other == profile.render)


@pytest.mark.parametrize(
    ("a", "b"),
    [({"k": 1}, {"k": 1.0}), ({"k": 0.0}, {"k": -0.0}), ({"k": [2, 3.0]}, {"k": [2.0, 3]})],
)
def test_numbers_hash_by_value(a: dict[str, Any], b: dict[str, Any]) -> None:
    render = RenderSettings(engine="template")
    pa = ProfileConfig(components=[ComponentConfig(name="motion", params=a)], render=render)
    pb = ProfileConfig(components=[ComponentConfig(name="motion", params=b)], render=render)
    assert config_hash(pa) == config_hash(pb)


def test_booleans_are_not_numbers_and_list_order_matters() -> None:
    render = RenderSettings(engine="template")

    def h(p: dict[str, Any]) -> str:
        return config_hash(
            ProfileConfig(components=[ComponentConfig(name="motion", params=p)], render=render)
        )

    assert h({"k": True}) != h({"k": 1})
    assert h({"k": [1, 2]}) != h({"k": [2, 1]})
    assert h({"k": "1"}) != h({"k": 1})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"components": [{"name": "a"}, {"name": "a", "required": False}]}, "more than once"),
        ({"components": [{"name": "a", "enabled": False}]}, "at least one enabled"),
        ({"components": [{"name": "Bad-Name"}]}, "component name"),
        ({"components": [{"name": "a", "params": {"x": float("nan")}}]}, "not a JSON number"),
        ({"components": [{"name": "a"}], "render": {"engine": "llm"}}, "prompt_version"),
        (
            {"components": [{"name": "a"}], "render": {"engine": "template", "llm_model": "m"}},
            "template engine",
        ),
        ({"components": [{"name": "a"}], "render": {"engine": "magic"}}, "render.engine"),
        (
            {"components": [{"name": "a"}], "render": {"engine": "template", "locale": "english"}},
            "locale",
        ),
        ({"components": [{"name": "a"}]}, "render"),
        ({"components": [{"name": "a", "colour": 1}], "render": {"engine": "template"}}, "colour"),
    ],
)
def test_invalid_profiles_are_refused_with_every_reason(data: dict[str, Any], message: str) -> None:
    data = {"render": {"engine": "template"}, **data}
    if message == "render":
        data.pop("render")
    with pytest.raises(InvalidProfile) as info:
        ProfileConfig.parse(data)
    assert message in info.value.message
    assert info.value.code == "invalid_profile"


def test_locale_is_canonical() -> None:
    assert RenderSettings(engine="template", locale="en_us").locale == "en-US"


def test_model_signature_tracks_every_part_of_the_mapping() -> None:
    digest = "0" * 64
    base = {
        "faces": ModelRef(name="mtcnn", version="1"),
        "ocr_text": ModelRef(name="rapidocr", version="4"),
    }
    sig = model_signature(base)
    assert sig == model_signature(dict(reversed(list(base.items()))))
    variants = [
        {**base, "faces": ModelRef(name="mtcnn", version="2")},
        {**base, "faces": ModelRef(name="blazeface", version="1")},
        {**base, "faces": ModelRef(name="mtcnn", version="1", weights_digest=digest)},
        {"faces": base["faces"]},
        {**base, "transcript": ModelRef(name="whisper_tiny_en", version="1")},
    ]
    sigs = {model_signature(v) for v in variants}
    assert sig not in sigs and len(sigs) == len(variants)
    assert len(model_signature({})) == 64 and model_signature({}) != sig


def test_model_ref_round_trips_through_its_text_form() -> None:
    ref = ModelRef(name="text_embedding", version="3", weights_digest="ab" * 32)
    assert ModelRef.parse(ref.ref) == ref
    assert ModelRef.parse("mtcnn:1") == ModelRef(name="mtcnn", version="1")
    for bad in ("mtcnn", "mtcnn:", ":1", "a:b:c", "mtcnn:1@xyz"):
        with pytest.raises(InvalidProfile):
            ModelRef.parse(bad)
