"""Creating a queued run: the one path the API and the bulk jobs share.

:func:`enqueue_run` resolves the profile (components, params, ``required`` flags, sampling,
render settings and pinned model versions), computes the run identity (``config_hash``,
``model_signature``), records the video, inserts the ``runs`` row with status ``queued`` and its
``run_components`` rows — in one transaction, so a run is queued whole or not at all. The
scheduler picks it up after the admission window; nothing here waits for it. Billing (price
estimate and credit reservation) belongs to the caller's transaction: the API reserves credits
in the same transaction, the system account used by bulk jobs is not billed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg

from trendflow.actors.sources import check_source
from trendflow.contracts.identity import PlatformId, RunIdentity, validate_video_id
from trendflow.contracts.profile import ModelRef, ProfileConfig, config_hash, model_signature
from trendflow.db.repositories import components as rc_repo
from trendflow.db.repositories import profiles as profiles_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.db.repositories import videos as videos_repo


def profile_config(profile: profiles_repo.Profile) -> ProfileConfig:
    """A stored profile as the validated :class:`ProfileConfig` that ``config_hash`` hashes."""
    return ProfileConfig.parse(
        {
            "components": [
                {
                    "name": c.component_name,
                    "params": dict(c.params),
                    "required": c.required,
                    "enabled": c.enabled,
                }
                for c in profile.components
            ],
            "sampling": dict(profile.sampling),
            "render": dict(profile.render),
        }
    )


def pinned_models(profile: profiles_repo.Profile) -> dict[str, ModelRef]:
    """The profile's ``component → model:version`` mapping for its enabled components."""
    mapping: dict[str, ModelRef] = {}
    for comp in profile.components:
        if comp.enabled and comp.models:
            model = comp.models[0]
            mapping[comp.component_name] = ModelRef(
                name=model.model_name,
                version=model.model_version,
                weights_digest=model.weights_digest,
            )
    return mapping


async def enqueue_run(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID | None,
    profile_id: str,
    platform_id: PlatformId,
    video_id: str,
    source: Mapping[str, Any],
    title: str | None = None,
    idempotency_key: str | None = None,
    callback_url: str | None = None,
) -> tuple[runs_repo.Run, bool]:
    """Queue one run; returns ``(run, created)`` (``created=False``: idempotent repeat).

    ``source`` is the ``runs.source`` JSON (:mod:`trendflow.actors.sources`). The profile must
    be visible to ``user_id`` (built-in, public or theirs); errors: ``profile_not_found``,
    ``invalid_profile``, ``invalid_identifier``, ``invalid_input``.
    """
    validate_video_id(platform_id, video_id)
    check_source(source)
    async with conn.transaction():
        profile = await profiles_repo.get_profile(conn, profile_id=profile_id, user_id=user_id)
        config = profile_config(profile)
        mapping = pinned_models(profile)
        identity = RunIdentity.create(
            platform_id=platform_id, video_id=video_id, config_hash=config_hash(config)
        )
        await videos_repo.upsert_video(
            conn, platform_id=platform_id, video_id=video_id, title=title, source=dict(source)
        )
        run, created = await runs_repo.create_run(
            conn,
            run_id=uuid.UUID(identity.run_id),
            platform_id=platform_id,
            video_id=video_id,
            user_id=user_id,
            profile_id=profile_id,
            config_hash=identity.config_hash,
            sampling_policy_version=identity.sampling_policy_version,
            dataprocessor_version=identity.dataprocessor_version,
            model_signature=model_signature(mapping),
            model_mapping={name: ref.ref for name, ref in mapping.items()},
            profile_config=config.model_dump(mode="json"),
            source=dict(source),
            idempotency_key=idempotency_key,
            callback_url=callback_url,
        )
        if created:
            await rc_repo.add_run_components(
                conn,
                run_id=run.run_id,
                components=[(c.name, c.required) for c in config.enabled],
            )
    return run, created


__all__ = ["enqueue_run", "pinned_models", "profile_config"]
