"""Run creation and reading, behind the thin ``/api/runs`` routes.

Creation order (DESIGN.md §6, §9): validate the source and the profile (nothing written) →
honour a replayed ``Idempotency-Key`` (same request: the earlier run; a different one: 409) →
cache lookup by (video_id, config_hash, model_signature) within ``cache_ttl_days`` → in ONE
transaction: the run row (a new queued run through :func:`enqueue_run`, or an ``ok`` run that
reuses a cached run's artifacts) and the credit reservation. A refused reservation rolls the
run back, so a refused request leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from trendflow.actors.enqueue import pinned_models, profile_config
from trendflow.actors.sources import upload_source, youtube_source
from trendflow.api.schemas import (
    ComponentStatusOut,
    EstimateIn,
    EstimateOut,
    InlineProfileIn,
    RunIn,
    RunOut,
    RunStatusOut,
)
from trendflow.api.uploads import load_upload
from trendflow.api.urls import check_callback_url
from trendflow.billing.admission import create_billed_run
from trendflow.billing.estimate import Estimate, estimate
from trendflow.billing.pricing import VideoParams
from trendflow.contracts.identity import parse_youtube_video_id
from trendflow.contracts.profile import ProfileConfig, config_hash, model_signature
from trendflow.db.repositories import catalog
from trendflow.db.repositories import components as rc_repo
from trendflow.db.repositories import profiles as profiles_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.db.repositories.users import User
from trendflow.errors import (
    IdempotencyConflict,
    InputError,
    ModelServingDisabled,
)
from trendflow.pipeline.components import get_component
from trendflow.pipeline.types import VideoMeta
from trendflow.runs import reuse_cached
from trendflow.settings import Settings
from trendflow.storage.base import ResultStore

TERMINAL_COMPONENT = frozenset({"ok", "empty", "error", "skipped"})


@dataclass(frozen=True, slots=True)
class ResolvedSource:
    platform_id: str
    video_id: str
    source: dict[str, Any]
    title: str | None
    facts: VideoParams | None  # known for uploads (probed); YouTube needs the client's duration


@dataclass(frozen=True, slots=True)
class ResolvedProfile:
    profile_id: str
    config: ProfileConfig
    config_hash: str
    model_signature: str
    cache_ttl_days: int
    # an inline profile not stored yet: saved in the creation transaction
    to_save: profiles_repo.Profile | None = None


async def resolve_source(
    req: EstimateIn | RunIn, *, user: User, store: ResultStore
) -> ResolvedSource:
    """Where the video comes from; refuses non-YouTube URLs and others' uploads."""
    if req.youtube_url is not None:
        video_id = parse_youtube_video_id(req.youtube_url)
        url = f"https://www.youtube.com/watch?v={video_id}"
        return ResolvedSource("youtube", video_id, youtube_source(url), None, None)
    assert req.upload_id is not None
    up = await load_upload(store, upload_id=req.upload_id, user_id=user.user_id)
    meta = VideoMeta(
        title=up.meta.title,
        description=up.meta.description,
        tags=tuple(up.meta.tags),
        channel=up.meta.channel,
        published_at=up.meta.published_at,
        duration_s=up.duration_s,
        language=up.meta.language,
    )
    from trendflow.storage.keys import upload_key

    source = upload_source(upload_key(up.upload_id, up.filename), meta)
    facts = VideoParams(duration_s=up.duration_s, width=up.width, height=up.height)
    return ResolvedSource("upload", up.video_id, source, up.meta.title or None, facts)


def _inline_profile(
    inline: InlineProfileIn, *, user: User
) -> tuple[profiles_repo.Profile, ProfileConfig]:
    config = ProfileConfig.parse(inline.model_dump())
    digest = config_hash(config)
    profile_id = f"inline-{user.user_id.hex[:8]}-{digest[:12]}"
    profile = profiles_repo.Profile(
        profile_id=profile_id,
        name="inline profile",
        user_id=user.user_id,
        description="created from a run request",
        sampling=dict(inline.sampling),
        render=dict(inline.render),
        components=tuple(
            profiles_repo.ProfileComponent(
                component_name=c.name, required=c.required, enabled=c.enabled, params=c.params
            )
            for c in inline.components
        ),
    )
    return profile, config


async def resolve_profile(
    conn: asyncpg.Connection, req: EstimateIn | RunIn, *, user: User, settings: Settings
) -> ResolvedProfile:
    """The profile's validated config and identity hashes; unknown components are refused."""
    to_save: profiles_repo.Profile | None = None
    if req.profile_id is not None:
        profile = await profiles_repo.get_profile(
            conn, profile_id=req.profile_id, user_id=user.user_id
        )
        config = profile_config(profile)
        ttl = profile.cache_ttl_days
    else:
        assert req.profile is not None
        profile, config = _inline_profile(req.profile, user=user)
        to_save = profile
        ttl = settings.api.default_cache_ttl_days
    # Every enabled component must be one the service knows (and can schedule and price).
    await catalog.get_resource_requirements(conn, component_names=[c.name for c in config.enabled])
    if not settings.triton.enabled:
        needing = [c.name for c in config.enabled if get_component(c.name).USES_MODEL_SERVER]
        if needing:
            raise ModelServingDisabled(
                f"this deployment serves no models (TRENDFLOW_TRITON__ENABLED=false), and "
                f"{', '.join(needing)} need one; choose a profile without them, or start the "
                "stack with --triton on",
                components=needing,
            )
    mapping = pinned_models(profile)
    return ResolvedProfile(
        profile_id=profile.profile_id,
        config=config,
        config_hash=config_hash(config),
        model_signature=model_signature(mapping),
        cache_ttl_days=ttl,
        to_save=to_save,
    )


async def _cached(
    conn: asyncpg.Connection, src: ResolvedSource, prof: ResolvedProfile, ttl_days: int
) -> runs_repo.Run | None:
    if ttl_days <= 0:
        return None
    return await runs_repo.find_cached_run(
        conn,
        video_id=src.video_id,
        config_hash=prof.config_hash,
        model_signature=prof.model_signature,
        finished_after=datetime.now(UTC) - timedelta(days=ttl_days),
    )


def _video_params(req: EstimateIn | RunIn, src: ResolvedSource) -> VideoParams:
    if src.facts is not None:
        return src.facts
    if req.duration_s is None:
        raise InputError(
            "duration_s is required with a YouTube URL (the API does not download it to price)",
            field="duration_s",
        )
    return VideoParams(duration_s=req.duration_s, width=req.width or 1920,
                       height=req.height or 1080)


def _estimate_out(est: Estimate, available: Decimal, *, cached: bool) -> EstimateOut:
    return EstimateOut(
        total=est.total,
        eta_s=None if est.eta is None else round(est.eta.total_s, 1),
        components=est.prices,
        cached=cached,
        available=available,
        lines=[c.to_dict() for c in est.components],
    )


async def estimate_run(
    conn: asyncpg.Connection,
    req: EstimateIn,
    *,
    user: User,
    settings: Settings,
    store: ResultStore,
) -> EstimateOut:
    """Price and time of the requested run; nothing is written."""
    src = await resolve_source(req, user=user, store=store)
    prof = await resolve_profile(conn, req, user=user, settings=settings)
    hit = await _cached(conn, src, prof, prof.cache_ttl_days)
    est = await estimate(
        conn, profile=prof.config, video=_video_params(req, src), user_id=user.user_id,
        settings=settings, reuse=hit is not None,
    )
    return _estimate_out(est, user.available, cached=hit is not None)


def request_fingerprint(src: ResolvedSource, prof: ResolvedProfile, req: RunIn) -> str:
    """What makes two run requests "the same" for an Idempotency-Key replay."""
    parts = [src.platform_id, src.video_id, prof.config_hash, req.callback_url or "",
             str(req.cache_ttl_days), str(req.duration_s), str(req.max_total)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


async def create_run(
    conn: asyncpg.Connection,
    req: RunIn,
    *,
    user: User,
    idempotency_key: str | None,
    settings: Settings,
    store: ResultStore,
) -> tuple[runs_repo.Run, bool, EstimateOut | None]:
    """Create (or replay) a run; returns ``(run, created, estimate)``."""
    if idempotency_key is not None and not (
        1 <= len(idempotency_key) <= 128 and idempotency_key.isprintable()
        and "#" not in idempotency_key
    ):
        raise InputError("Idempotency-Key must be 1-128 printable characters without '#'",
                         field="Idempotency-Key")
    src = await resolve_source(req, user=user, store=store)
    prof = await resolve_profile(conn, req, user=user, settings=settings)
    video = _video_params(req, src)
    if req.callback_url is not None:
        await check_callback_url(
            req.callback_url, allow_loopback=settings.api.webhook_allow_loopback
        )
    # The stored key carries the request's fingerprint ("<client key>#<fingerprint>"), so a
    # replay with a different body is recognised without another column.
    stored_key = None
    if idempotency_key is not None:
        stored_key = f"{idempotency_key}#{request_fingerprint(src, prof, req)}"
        earlier = await runs_repo.find_by_idempotency_key(
            conn, user_id=user.user_id, key_prefix=idempotency_key + "#"
        )
        if earlier is not None:
            earlier_id, earlier_key = earlier
            if earlier_key != stored_key:
                raise IdempotencyConflict(
                    "this Idempotency-Key was used for a different request",
                    idempotency_key=idempotency_key,
                )
            run = await runs_repo.get_run(conn, run_id=earlier_id, user_id=user.user_id)
            return run, False, None
    ttl = req.cache_ttl_days if req.cache_ttl_days is not None else prof.cache_ttl_days
    ttl = min(ttl, settings.api.max_cache_ttl_days)
    async with conn.transaction():
        if prof.to_save is not None:
            await profiles_repo.save_profile(conn, profile=prof.to_save)
        hit = await _cached(conn, src, prof, ttl)
        billed = await create_billed_run(
            conn,
            user_id=user.user_id,
            profile_id=prof.profile_id,
            platform_id=src.platform_id,  # type: ignore[arg-type]
            video_id=src.video_id,
            source=src.source,
            video=video,
            settings=settings,
            title=src.title,
            idempotency_key=stored_key,
            callback_url=req.callback_url,
            max_total=req.max_total,
            reuse=hit is not None,
        )
        run = billed.run
        if billed.created and hit is not None:
            run = await reuse_cached(conn, run=run, cached=hit)
    est = None
    if billed.estimate is not None:
        est = _estimate_out(billed.estimate, user.available - billed.estimate.total,
                            cached=hit is not None)
    return run, billed.created, est


def run_out(run: runs_repo.Run) -> RunOut:
    """The public view of a run row (the stored idempotency fingerprint stays private)."""
    return RunOut(
        run_id=run.run_id,
        status=run.status,
        stage=run.stage,
        platform_id=run.platform_id,
        video_id=run.video_id,
        profile_id=run.profile_id,
        config_hash=run.config_hash,
        model_signature=run.model_signature,
        reused_from_run_id=run.reused_from_run_id,
        callback_url=run.callback_url,
        error=run.error,
        warnings=list(run.warnings),
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


async def run_status(conn: asyncpg.Connection, *, run_id: uuid.UUID, user: User) -> RunStatusOut:
    """Stage, per-component status and progress, and an ETA from the pace so far."""
    run = await runs_repo.get_run(conn, run_id=run_id, user_id=user.user_id)
    comps = await rc_repo.list_run_components(conn, run_id=run_id)
    done = sum(1 for c in comps if c.status in TERMINAL_COMPONENT)
    total = len(comps)
    finished = run.status in runs_repo.TERMINAL_STATUSES
    progress = 1.0 if finished else (done / total if total else 0.0)
    eta: float | None = None
    if finished:
        eta = 0.0
    elif run.started_at is not None and done:
        elapsed = (datetime.now(UTC) - run.started_at).total_seconds()
        eta = round(elapsed / done * (total - done), 1)
    return RunStatusOut(
        run_id=run.run_id,
        status=run.status,
        stage=run.stage,
        progress=progress,
        eta_s=eta,
        components=[
            ComponentStatusOut(
                name=c.component_name,
                status=c.status,
                required=c.required,
                progress=1.0 if c.status in TERMINAL_COMPONENT else 0.0,
                duration_ms=c.duration_ms,
                empty_reason=c.empty_reason,
                error=c.error,
            )
            for c in comps
        ],
        error=run.error,
        reused_from_run_id=run.reused_from_run_id,
        updated_at=run.updated_at,
    )


def artifact_run_id(run: runs_repo.Run) -> uuid.UUID:
    """Whose files hold this run's results: its own, or the cached run it reuses."""
    return run.reused_from_run_id or run.run_id
