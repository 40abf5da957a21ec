"""Creating a queued run: the one path the API and the bulk jobs share.

:func:`enqueue_run` takes the resolved profile (:func:`~trendflow.runs.request.resolve_profile`),
computes the run identity, records the video, inserts the ``runs`` row with status ``queued`` and
its ``run_components`` rows — in one transaction, so a run is queued whole or not at all. The
scheduler picks it up after the admission window; nothing here waits for it. Billing (price
estimate and credit reservation) belongs to the caller's transaction: the API reserves credits
in the same transaction (:func:`~trendflow.runs.admission.create_billed_run`), the system
account used by bulk jobs is not billed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg

from trendflow.billing.pricing import VideoParams
from trendflow.contracts.identity import PlatformId, RunIdentity, validate_video_id
from trendflow.db.repositories import components as rc_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.db.repositories import videos as videos_repo
from trendflow.runs.priced import priced_json
from trendflow.runs.request import ResolvedProfile
from trendflow.runs.sources import check_source, video_title


async def enqueue_run(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID | None,
    profile: ResolvedProfile,
    platform_id: PlatformId,
    video_id: str,
    source: Mapping[str, Any],
    title: str | None = None,
    idempotency_key: str | None = None,
    callback_url: str | None = None,
    priced: VideoParams | None = None,
) -> tuple[runs_repo.Run, bool]:
    """Queue one run; returns ``(run, created)`` (``created=False``: idempotent repeat).

    ``source`` is the ``runs.source`` JSON (:mod:`trendflow.runs.sources`); ``priced`` the
    video facts a paid run's reservation is computed from (kept with the run and checked once
    the video is fetched: :mod:`trendflow.runs.priced`); ``title`` the video's, by default the
    one the source names (:func:`~trendflow.runs.sources.video_title`, as a rebuilt index
    has it). Errors: ``invalid_identifier``, ``invalid_input``.
    """
    validate_video_id(platform_id, video_id)
    check_source(source)
    identity = RunIdentity.create(
        platform_id=platform_id, video_id=video_id, config_hash=profile.config_hash
    )
    async with conn.transaction():
        await videos_repo.upsert_video(
            conn, platform_id=platform_id, video_id=video_id,
            title=video_title(source) if title is None else title, source=dict(source),
        )
        run, created = await runs_repo.create_run(
            conn,
            run_id=uuid.UUID(identity.run_id),
            platform_id=platform_id,
            video_id=video_id,
            user_id=user_id,
            profile_id=profile.profile_id,
            config_hash=identity.config_hash,
            sampling_policy_version=identity.sampling_policy_version,
            dataprocessor_version=identity.dataprocessor_version,
            model_signature=profile.model_signature,
            model_mapping=profile.model_mapping,
            profile_config=profile.config.model_dump(mode="json"),
            source=dict(source),
            idempotency_key=idempotency_key,
            callback_url=callback_url,
            priced_video=None if priced is None else priced_json(priced),
        )
        if created:
            await rc_repo.add_run_components(
                conn,
                run_id=run.run_id,
                components=[(c.name, c.required) for c in profile.config.enabled],
            )
    return run, created


__all__ = ["enqueue_run"]
