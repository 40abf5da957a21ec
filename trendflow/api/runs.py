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
from typing import Any

import asyncpg

from trendflow.actors.enqueue import enqueue_run, pinned_models, profile_config
from trendflow.actors.sources import upload_source, youtube_source
from trendflow.api.billing import BillingPort, Estimate, VideoFacts
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
from trendflow.contracts.identity import RunIdentity, parse_youtube_video_id
from trendflow.contracts.profile import ProfileConfig, config_hash, model_signature
from trendflow.db.repositories import catalog
from trendflow.db.repositories import components as rc_repo
from trendflow.db.repositories import profiles as profiles_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.db.repositories import videos as videos_repo
from trendflow.db.repositories.users import User
from trendflow.errors import IdempotencyConflict, InputError
from trendflow.pipeline.types import VideoMeta
from trendflow.settings import Settings
from trendflow.storage.base import ResultStore

TERMINAL_COMPONENT = frozenset({"ok", "empty", "error", "skipped"})


@dataclass(frozen=True, slots=True)
class ResolvedSource:
    platform_id: str
    video_id: str
    source: dict[str, Any]
    title: str | None
    facts: VideoFacts | None  # known for uploads (probed); YouTube needs the client's duration


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
    facts = VideoFacts(duration_s=up.duration_s, width=up.width, height=up.height)
    return ResolvedSource("youtube", up.video_id, source, up.meta.title or None, facts)


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


def _facts(req: EstimateIn | RunIn, src: ResolvedSource) -> VideoFacts:
    if src.facts is not None:
        return src.facts
    duration = getattr(req, "duration_s", None)
    if duration is None:
        raise InputError(
            "duration_s is required to price a YouTube video (the API does not download it)",
            field="duration_s",
        )
    return VideoFacts(duration_s=duration, width=getattr(req, "width", None),
                      height=getattr(req, "height", None))


async def estimate_run(
    conn: asyncpg.Connection,
    req: EstimateIn,
    *,
    user: User,
    settings: Settings,
    store: ResultStore,
    billing: BillingPort,
) -> EstimateOut:
    """Price and time of the requested run; nothing is written."""
    src = await resolve_source(req, user=user, store=store)
    prof = await resolve_profile(conn, req, user=user, settings=settings)
    hit = await _cached(conn, src, prof, prof.cache_ttl_days)
    est = await billing.estimate(
        conn, user=user, profile=prof.config, video=_facts(req, src), cached=hit is not None
    )
    return _estimate_out(est, user, cached=hit is not None)


def _estimate_out(est: Estimate, user: User, *, cached: bool) -> EstimateOut:
    return EstimateOut(
        total=est.total,
        eta_s=est.eta_s,
        components=dict(est.components),
        cached=cached,
        available=user.available,
    )


def request_fingerprint(src: ResolvedSource, prof: ResolvedProfile, req: RunIn) -> str:
    """What makes two run requests "the same" for an Idempotency-Key replay."""
    parts = [src.platform_id, src.video_id, prof.config_hash, req.callback_url or "",
             str(req.cache_ttl_days)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


async def _replayed(
    conn: asyncpg.Connection, *, user: User, key: str
) -> runs_repo.Run | None:
    row = await conn.fetchrow(
        "SELECT run_id FROM runs WHERE user_id = $1 AND idempotency_key = $2", user.user_id, key
    )
    if row is None:
        return None
    return await runs_repo.get_run(conn, run_id=row["run_id"], user_id=user.user_id)


def _idempotency_key(key: str | None, fingerprint: str) -> str | None:
    # The stored key carries the request's fingerprint, so a replay with a different body is
    # recognised without another column: "<client key>#<fingerprint>".
    return None if key is None else f"{key}#{fingerprint}"


async def create_run(
    conn: asyncpg.Connection,
    req: RunIn,
    *,
    user: User,
    idempotency_key: str | None,
    settings: Settings,
    store: ResultStore,
    billing: BillingPort,
) -> tuple[runs_repo.Run, bool, EstimateOut | None]:
    """Create (or replay) a run; returns ``(run, created, estimate)``."""
    if idempotency_key is not None and not (1 <= len(idempotency_key) <= 128
                                            and idempotency_key.isprintable()):
        raise InputError("Idempotency-Key must be 1-128 printable characters",
                         field="Idempotency-Key")
    src = await resolve_source(req, user=user, store=store)
    prof = await resolve_profile(conn, req, user=user, settings=settings)
    if req.callback_url is not None:
        await check_callback_url(
            req.callback_url, allow_loopback=settings.api.webhook_allow_loopback
        )
    stored_key = _idempotency_key(idempotency_key, request_fingerprint(src, prof, req))
    if idempotency_key is not None:
        prefix = idempotency_key + "#"
        earlier = await conn.fetchrow(
            "SELECT idempotency_key FROM runs WHERE user_id = $1 AND starts_with("
            "idempotency_key, $2)",
            user.user_id,
            prefix,
        )
        if earlier is not None:
            if earlier["idempotency_key"] != stored_key:
                raise IdempotencyConflict(
                    "this Idempotency-Key was used for a different request",
                    idempotency_key=idempotency_key,
                )
            run = await _replayed(conn, user=user, key=stored_key)
            assert run is not None
            return run, False, None
    ttl = req.cache_ttl_days if req.cache_ttl_days is not None else prof.cache_ttl_days
    ttl = min(ttl, settings.api.max_cache_ttl_days)
    facts = _facts_for_run(src)
    async with conn.transaction():
        if prof.to_save is not None:
            await profiles_repo.save_profile(conn, profile=prof.to_save)
        hit = await _cached(conn, src, prof, ttl)
        est = None
        if facts is not None:
            est = await billing.estimate(
                conn, user=user, profile=prof.config, video=facts, cached=hit is not None
            )
        if hit is not None:
            run, created = await _reuse(conn, hit, src=src, prof=prof, user=user, req=req,
                                        idempotency_key=stored_key)
        else:
            run, created = await enqueue_run(
                conn,
                user_id=user.user_id,
                profile_id=prof.profile_id,
                platform_id="youtube",
                video_id=src.video_id,
                source=src.source,
                title=src.title,
                idempotency_key=stored_key,
                callback_url=req.callback_url,
            )
        if created and est is not None:
            await billing.reserve(conn, user=user, run_id=run.run_id, estimate=est)
    return run, created, None if est is None else _estimate_out(est, user, cached=hit is not None)


def _facts_for_run(src: ResolvedSource) -> VideoFacts | None:
    # A YouTube run is priced once the Segmenter knows its duration (billing settles it);
    # an upload is priced and reserved now.
    return src.facts


async def _reuse(
    conn: asyncpg.Connection,
    hit: runs_repo.Run,
    *,
    src: ResolvedSource,
    prof: ResolvedProfile,
    user: User,
    req: RunIn,
    idempotency_key: str | None,
) -> tuple[runs_repo.Run, bool]:
    """A finished run for this user that points at ``hit``'s artifacts."""
    identity = RunIdentity.create(
        platform_id="youtube", video_id=src.video_id, config_hash=prof.config_hash
    )
    await videos_repo.upsert_video(conn, platform_id="youtube", video_id=src.video_id,
                                   title=src.title, source=dict(src.source))
    now = datetime.now(UTC)
    run, created = await runs_repo.create_run(
        conn,
        run_id=uuid.UUID(identity.run_id),
        platform_id="youtube",
        video_id=src.video_id,
        user_id=user.user_id,
        profile_id=prof.profile_id,
        config_hash=prof.config_hash,
        sampling_policy_version=hit.sampling_policy_version,
        dataprocessor_version=hit.dataprocessor_version,
        model_signature=prof.model_signature,
        model_mapping=hit.model_mapping,
        profile_config=prof.config.model_dump(mode="json"),
        source=src.source,
        status="ok",
        stage="reused",
        warnings=list(hit.warnings),
        reused_from_run_id=hit.run_id,
        idempotency_key=idempotency_key,
        callback_url=req.callback_url,
        started_at=now,
        finished_at=now,
    )
    if created:
        for comp in await rc_repo.list_run_components(conn, run_id=hit.run_id):
            await rc_repo.upsert_run_component(
                conn,
                run_id=run.run_id,
                component_name=comp.component_name,
                status=comp.status,  # type: ignore[arg-type]
                required=comp.required,
                schema_version=comp.schema_version,
                producer_version=comp.producer_version,
                model=comp.model,
                started_at=comp.started_at,
                finished_at=comp.finished_at,
                duration_ms=comp.duration_ms,
                device_used=comp.device_used,
                error=comp.error,
                empty_reason=comp.empty_reason,
                notes=["reused from run " + str(hit.run_id)],
            )
    return run, created


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
