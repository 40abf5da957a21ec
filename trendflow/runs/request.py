"""A run request resolved once: the profile and its identity hashes, checked before anything
is written.

:func:`resolve_profile` is the one place a requested profile (a stored one visible to the user,
or an inline one not saved yet) becomes the value every later step uses: the
:class:`~trendflow.contracts.profile.ProfileConfig` parsed once, its components known, schedulable
and priced, each component's params checked against the params it declares
(:meth:`~trendflow.pipeline.components.base.Component.check_params`), the pinned models, and the
``config_hash`` / ``model_signature`` of the cache key. Pricing (``POST /api/estimate``),
creation (:func:`~trendflow.runs.admission.create_billed_run`) and the bulk jobs
(:func:`~trendflow.runs.enqueue.enqueue_run`) all take this value, so a request the service
would refuse later is refused here, with a 4xx and nothing reserved.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace

import asyncpg

from trendflow.contracts.profile import ModelRef, ProfileConfig, config_hash, model_signature
from trendflow.db.repositories import catalog
from trendflow.db.repositories import profiles as profiles_repo
from trendflow.errors import InputError, ModelNotFound, ModelServingDisabled
from trendflow.pipeline.components.registry import get_component
from trendflow.render.gateway import require_llm
from trendflow.settings import LlmSettings, TritonSettings
from trendflow.triton.mapping import parse_ref
from trendflow.triton.readiness import ModelServingProbe, require_predictor


@dataclass(frozen=True, slots=True)
class ResolvedProfile:
    """A requested profile, validated, with the hashes of the run identity and cache key."""

    profile_id: str
    config: ProfileConfig
    models: dict[str, ModelRef]  # component → pinned model (model-backed components only)
    config_hash: str
    model_signature: str
    # The profile's own (an inline profile: the default); the API replaces it with the
    # request's window (trendflow.api.runs), which the user's account setting decides.
    cache_ttl_days: int
    to_save: profiles_repo.Profile | None = None  # an inline profile, saved with the run

    @property
    def model_mapping(self) -> dict[str, str]:
        """The pinned models as the run row stores them (``name:version[@digest]``)."""
        return {name: ref.ref for name, ref in self.models.items()}


def inline_profile_id(user_id: uuid.UUID, digest: str) -> str:
    """The id of ``user_id``'s inline profile with config hash ``digest``: one stored copy per
    user and config (the same inline request reuses it), opaque (a hash of both: it shows
    neither the user nor the config)."""
    return "inline-" + hashlib.sha256(f"{user_id}\x1f{digest}".encode()).hexdigest()[:24]


def model_backed(config: ProfileConfig) -> list[str]:
    """The enabled components of ``config`` that need a model server, sorted."""
    return sorted(c.name for c in config.enabled if get_component(c.name).USES_MODEL_SERVER)


async def check_profile(
    conn: asyncpg.Connection, config: ProfileConfig, *, models_served: bool = True,
    llm: LlmSettings | None = None,
) -> None:
    """Every enabled component exists, declares the params it is given, can be scheduled and
    priced (a row in ``component_resource_requirements``), and — when this deployment serves
    no models (``models_served=False``) — needs no model server; with ``llm`` (this
    deployment's LLM), a profile rendering with ``engine: llm`` needs it enabled."""
    if llm is not None and config.render.engine == "llm":
        require_llm(llm)
    classes = {c.name: get_component(c.name) for c in config.enabled}
    for comp in config.enabled:
        classes[comp.name].check_params(comp.params)
    await catalog.get_resource_requirements(conn, component_names=list(classes))
    if not models_served:
        needing = model_backed(config)
        if needing:
            raise ModelServingDisabled(
                f"this deployment serves no models (TRENDFLOW_TRITON__ENABLED=false), and "
                f"{', '.join(needing)} need one; choose a profile without them, or start the "
                "stack with --triton on",
                components=needing,
            )


def pin_default_models(profile: profiles_repo.Profile,
                       defaults: Mapping[str, str]) -> profiles_repo.Profile:
    """``profile`` with every enabled model-backed component that pins no model pinned to this
    deployment's default for it (``settings.triton.models``: ``component → name:version``), as a
    user's profile is when it is saved (``PUT /api/profiles/{id}``, an inline profile). A run
    pins exactly the profile's models; a component without a default stays unpinned and
    :func:`resolve_profile` refuses it (``model_not_found``)."""
    components = []
    for comp in profile.components:
        ref = defaults.get(comp.component_name)
        if (comp.enabled and not comp.models and ref is not None
                and get_component(comp.component_name).USES_MODEL_SERVER):
            name, version = parse_ref(ref)
            comp = replace(comp, models=(profiles_repo.ModelMapping(name, version),))
        components.append(comp)
    return replace(profile, components=tuple(components))


async def resolve_profile(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID | None,
    profile_id: str | None = None,
    inline: profiles_repo.Profile | None = None,
    inline_cache_ttl_days: int = 0,
    models_served: bool = True,
    triton: TritonSettings | None = None,
    serving: ModelServingProbe | None = None,
    llm: LlmSettings | None = None,
) -> ResolvedProfile:
    """The stored profile ``profile_id`` (built in, public or ``user_id``'s) or the unsaved
    ``inline`` one (its cache window: ``inline_cache_ttl_days``; its id is derived here from the
    user and the config hash, whatever ``inline.profile_id`` says), checked by
    :func:`check_profile`. With ``triton`` (this deployment's model serving: the API passes
    it), every enabled model-backed component needs a pinned model (``model_not_found``
    otherwise: saving a profile pins the defaults, :func:`pin_default_models`), and a profile
    asking for the forecast also needs its pinned predictor trained and served
    (:func:`~trendflow.triton.readiness.require_predictor`); with ``serving`` (the API's
    readiness fact), a profile with model-backed components needs the model server ready now
    (:meth:`~trendflow.triton.readiness.ModelServingProbe.require_ready`: ``503
    model_serving_unavailable`` with ``retry_after_s`` otherwise); with ``llm``, an
    ``engine: llm`` profile needs this deployment's LLM (``llm_not_configured``).

    Errors: ``profile_not_found``, ``invalid_profile`` (also for params a component does not
    declare), ``component_not_found``, ``model_serving_disabled``, ``model_not_found``,
    ``model_serving_unavailable``, ``llm_not_configured``.
    """
    if (profile_id is None) == (inline is None):
        raise InputError("give exactly one of a profile id and an inline profile",
                         field="profile")
    if profile_id is not None:
        profile = await profiles_repo.get_profile(conn, profile_id=profile_id, user_id=user_id)
        ttl = profile.cache_ttl_days
    else:
        assert inline is not None
        profile, ttl = inline, inline_cache_ttl_days
    config = profile.config()
    await check_profile(conn, config, models_served=models_served, llm=llm)
    digest = config_hash(config)
    if inline is not None:
        if user_id is None:
            raise InputError("an inline profile needs a user", field="profile")
        profile = replace(inline, profile_id=inline_profile_id(user_id, digest),
                          user_id=user_id)
    models = profile.pinned_models()
    unpinned = [name for name in model_backed(config) if name not in models]
    if unpinned and triton is not None and models_served:
        raise ModelNotFound(
            f"{', '.join(unpinned)} in profile {profile.profile_id or 'inline'!r} pin no model "
            "(name:version): save the profile again to pin this deployment's defaults, or "
            "give each component its model",
            component=unpinned[0], components=unpinned)
    if triton is not None:
        await require_predictor(triton, [c.name for c in config.enabled],
                                {name: ref.ref for name, ref in models.items()})
    if serving is not None:
        # After the predictor rule: weights never built is model_not_found (retrying will
        # not help), a server that does not answer now is model_serving_unavailable.
        await serving.require_ready(model_backed(config))
    return ResolvedProfile(
        profile_id=profile.profile_id,
        config=config,
        models=models,
        config_hash=digest,
        model_signature=model_signature(models),
        cache_ttl_days=ttl,
        to_save=profile if inline is not None else None,
    )


__all__ = ["ResolvedProfile", "check_profile", "inline_profile_id", "model_backed",
           "pin_default_models", "resolve_profile"]
