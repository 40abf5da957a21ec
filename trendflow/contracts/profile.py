"""The analysis profile and its hashes: ``config_hash`` and ``model_signature``.

A profile says what to compute (components with their params and whether each is required), how
the video is sampled, and how the text analysis is rendered. :func:`config_hash` is the sha256 of
its *normalized* canonical JSON, so two profiles that ask for the same work hash the same:

- components are sorted by name; disabled components are dropped; a name may appear only once;
- param objects are compared by content, not key order; lists keep their order;
- a number is hashed by value: ``1`` and ``1.0`` are the same param (an integral float is written
  as an integer), ``-0.0`` is ``0``; NaN and infinities are refused (not JSON); booleans stay
  booleans (``True`` is not ``1``);
- strings are compared exactly (no case folding or Unicode normalization).

Model versions are not part of the profile hash: the resolved ``component → model:version``
mapping is pinned per run and hashed by :func:`model_signature` (cache key =
``(video_id, config_hash, model_signature)``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)

from trendflow.contracts.identity import SAMPLING_POLICY_VERSION
from trendflow.errors import InvalidProfile, field_problems

TIER0_COMPONENTS: tuple[str, ...] = (
    "metadata_features",
    "text_embeddings",
    "shot_detection",
    "color_stats",
    "motion",
    "loudness",
    "audio_features",
    "speech_activity",
    "faces",
)
"""The components the forecast is trained on (Tier-0, the training schema): a profile with
``popularity_prediction`` must enable every one (the owner's rule)."""


def check_profile_components(enabled: Sequence[str]) -> None:
    """The owner's rule: a profile with ``popularity_prediction`` enables every Tier-0 component.

    Called by :class:`ProfileConfig` validation, i.e. at profile save and at run creation (both
    parse the profile); :class:`InvalidProfile` otherwise. The features read from these
    components are :mod:`trendflow.forecast.tier0`.
    """
    if "popularity_prediction" not in enabled:
        return
    missing = [c for c in TIER0_COMPONENTS if c not in enabled]
    if missing:
        raise InvalidProfile(
            "popularity_prediction needs every Tier-0 component it was trained on; "
            f"enable {missing}",
            missing=missing,
        )



COMPONENT_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
# Version of the normalization below; part of the hashed document so a change of the rules can
# never make an old hash collide with a new one.
CONFIG_HASH_FORMAT = 1
_LOCALE_RE = re.compile(r"([A-Za-z]{2,3})(?:[-_]([A-Za-z]{2}))?")
_MODEL_PART_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_DIGEST_RE = re.compile(r"[0-9a-f]{64}")


def canonical_json(value: Any) -> bytes:
    """UTF-8 canonical JSON: sorted keys, no spaces, non-ASCII kept, NaN refused."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def canonical_value(value: Any, *, where: str = "params") -> JsonValue:
    """``value`` with numbers normalized (see the module docstring) and dict keys checked."""
    match value:
        case None | bool() | str():
            return value
        case int():
            return int(value)
        case float():
            if not math.isfinite(value):
                raise InvalidProfile(f"{where}: {value!r} is not a JSON number", where=where)
            return int(value) if value.is_integer() else value
        case Mapping():
            out: dict[str, JsonValue] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InvalidProfile(f"{where}: object key {key!r} is not text", where=where)
                out[key] = canonical_value(item, where=f"{where}.{key}")
            return out
        case list() | tuple():
            return [canonical_value(item, where=f"{where}[{i}]") for i, item in enumerate(value)]
    raise InvalidProfile(f"{where}: {type(value).__name__} is not a JSON value", where=where)


class ComponentConfig(BaseModel):
    """One component of a profile: its params, whether it is required, whether it is enabled.

    A failed required component fails the run; a failed optional one leaves a warning.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    params: dict[str, JsonValue] = Field(default_factory=dict)
    required: bool = True
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not COMPONENT_NAME_RE.fullmatch(value):
            raise ValueError(
                f"component name {value!r} must be 1-64 of a-z 0-9 _ starting with a letter"
            )
        return value

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        try:
            canonical_value(value)
        except InvalidProfile as exc:
            raise ValueError(exc.message) from None
        return value


class SamplingPolicy(BaseModel):
    """The analysis timeline: frames per second, frame height, and the policy version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fps: float = Field(default=12.0, gt=0, le=120)
    height: int = Field(default=320, ge=16, le=4320)
    version: str = SAMPLING_POLICY_VERSION


class RenderSettings(BaseModel):
    """How the written analysis is produced. The engine is always chosen explicitly.

    ``llm`` needs a ``prompt_version``; ``llm_model`` pins the gateway's model (None: the model
    configured on the gateway, recorded in the render cache key). ``template`` takes neither.
    ``render_profile_id`` names the render profile (tone, length) and is part of the render
    cache key.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: Literal["template", "llm"]
    render_profile_id: str = Field(default="default", pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    locale: str = "en"
    prompt_version: str | None = None
    llm_model: str | None = None

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        match = _LOCALE_RE.fullmatch(value)
        if match is None:
            raise ValueError(f"locale {value!r} must look like 'en' or 'en-US'")
        lang, region = match.groups()
        return lang.lower() + (f"-{region.upper()}" if region else "")

    @model_validator(mode="after")
    def _engine_fields(self) -> Self:
        if self.engine == "llm" and not self.prompt_version:
            raise ValueError("the llm engine needs a prompt_version")
        if self.engine == "template" and (self.prompt_version or self.llm_model):
            raise ValueError("the template engine takes no prompt_version or llm_model")
        return self


class ProfileConfig(BaseModel):
    """A full analysis profile: components, sampling policy, render settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    components: tuple[ComponentConfig, ...]
    sampling: SamplingPolicy = SamplingPolicy()
    render: RenderSettings
    # No per-profile timeouts: how long a run may take is the operator's setting
    # (TRENDFLOW_RUNTIME__*_TIMEOUT_*, trendflow.actors.policy.resolve_timeouts), the same for
    # every profile; a profile carrying ``timeouts`` is refused like any unknown field.

    @model_validator(mode="after")
    def _unique_enabled(self) -> Self:
        names = [c.name for c in self.components]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"components listed more than once: {dupes}")
        if not any(c.enabled for c in self.components):
            raise ValueError("a profile needs at least one enabled component")
        try:
            check_profile_components([c.name for c in self.components if c.enabled])
        except InvalidProfile as exc:
            raise ValueError(exc.message) from None
        return self

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> ProfileConfig:
        """Validate user input; any problem → :class:`InvalidProfile` listing every error."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            errors = field_problems(exc.errors(), root="profile")
            raise InvalidProfile(
                "invalid profile: " + "; ".join(f"{e['field']}: {e['problem']}" for e in errors),
                errors=errors,
            ) from None

    @property
    def enabled(self) -> tuple[ComponentConfig, ...]:
        """The enabled components, sorted by name."""
        return tuple(sorted((c for c in self.components if c.enabled), key=lambda c: c.name))

    def normalized(self) -> dict[str, JsonValue]:
        """The document :func:`config_hash` hashes (see the module docstring for the rules)."""
        return {
            "format": CONFIG_HASH_FORMAT,
            "components": [
                {
                    "name": c.name,
                    "params": canonical_value(c.params, where=f"{c.name}.params"),
                    "required": c.required,
                }
                for c in self.enabled
            ],
            "sampling": canonical_value(self.sampling.model_dump(), where="sampling"),
            "render": canonical_value(self.render.model_dump(), where="render"),
        }


def config_hash(profile: ProfileConfig) -> str:
    """sha256 hex of the canonical JSON of ``profile.normalized()``."""
    return hashlib.sha256(canonical_json(profile.normalized())).hexdigest()


class ModelRef(BaseModel):
    """A resolved model: Triton name, version and optionally the sha256 of its weights."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: str
    weights_digest: str | None = None

    @field_validator("name", "version")
    @classmethod
    def _part(cls, value: str) -> str:
        if not _MODEL_PART_RE.fullmatch(value):
            raise ValueError(f"{value!r} must be 1-128 of A-Z a-z 0-9 _ . - (no ':' or '@')")
        return value

    @field_validator("weights_digest")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None and not _DIGEST_RE.fullmatch(value):
            raise ValueError("weights_digest must be a sha256: 64 lowercase hex characters")
        return value

    @property
    def ref(self) -> str:
        """``name:version``, with ``@digest`` when the weights digest is known."""
        base = f"{self.name}:{self.version}"
        return f"{base}@{self.weights_digest}" if self.weights_digest else base

    @property
    def tag(self) -> str:
        """``name:version`` (what a component and its NPZ record as ``model``)."""
        return f"{self.name}:{self.version}"

    @classmethod
    def parse(cls, ref: str) -> ModelRef:
        """The inverse of :attr:`ref`."""
        body, _, digest = ref.partition("@")
        name, sep, version = body.partition(":")
        if not sep:
            raise InvalidProfile(f"model reference {ref!r} is not name:version[@sha256]")
        try:
            return cls(name=name, version=version, weights_digest=digest or None)
        except ValidationError as exc:
            raise InvalidProfile(f"model reference {ref!r}: {exc.errors()[0]['msg']}") from None


def model_signature(mapping: Mapping[str, ModelRef]) -> str:
    """sha256 hex of the canonical ``{component: "name:version[@digest]"}`` mapping.

    The empty mapping (a profile without model-backed components) has the signature of ``{}``.
    """
    for component in mapping:
        if not COMPONENT_NAME_RE.fullmatch(component):
            raise InvalidProfile(f"model mapping names an invalid component {component!r}")
    doc = {component: ref.ref for component, ref in mapping.items()}
    return hashlib.sha256(canonical_json(doc)).hexdigest()


__all__ = [
    "COMPONENT_NAME_RE",
    "ComponentConfig",
    "ModelRef",
    "ProfileConfig",
    "RenderSettings",
    "SamplingPolicy",
    "canonical_json",
    "canonical_value",
    "config_hash",
    "model_signature",
]
