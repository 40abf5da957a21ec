"""Run creation and reading, behind the thin ``/api/runs`` routes.

The HTTP request becomes the service's values here, once: where the video comes from
(:func:`resolve_source`), the profile (:func:`trendflow.runs.request.resolve_profile`), the
video's facts for pricing — an upload's probed facts, or what YouTube's own metadata says about
a YouTube video (:mod:`trendflow.api.youtube`; never what the client claims). Pricing then
calls :func:`~trendflow.billing.estimate.estimate` (nothing written); creation calls
:func:`~trendflow.runs.admission.create_billed_run`, which honours a replayed
``Idempotency-Key``, looks up the cache, queues the run (or ends it at once with a cached run's
results) and reserves its credits in ONE transaction, so a refused request leaves nothing
behind.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from trendflow.api.schemas import (
    ComponentStatusOut,
    EstimateIn,
    EstimateOut,
    InlineProfileIn,
    PricedVideoOut,
    RunIn,
    RunOut,
    RunStatusOut,
)
from trendflow.api.uploads import load_stored_upload
from trendflow.api.urls import check_callback_url
from trendflow.api.youtube import YoutubeMetadata
from trendflow.billing.estimate import Estimate, estimate
from trendflow.billing.pricing import VideoParams
from trendflow.contracts.identity import parse_youtube_video_id, youtube_watch_url
from trendflow.db.repositories import components as rc_repo
from trendflow.db.repositories import profiles as profiles_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.db.repositories import users as users_repo
from trendflow.db.repositories.users import User
from trendflow.errors import InputError
from trendflow.pipeline.types import VideoMeta
from trendflow.runs.admission import check_max_total, create_billed_run, find_cached
from trendflow.runs.request import ResolvedProfile, pin_default_models, resolve_profile
from trendflow.runs.sources import upload_source, youtube_source
from trendflow.settings import Settings
from trendflow.storage.base import ResultStore
from trendflow.triton.readiness import ModelServingProbe

TERMINAL_COMPONENT = frozenset({"ok", "empty", "error", "skipped"})
# The poll interval a run's status suggests (``Retry-After``) while the run is not finished:
# stages and component progress change every few seconds.
STATUS_POLL_S = 2


@dataclass(frozen=True, slots=True)
class ResolvedSource:
    platform_id: str
    video_id: str
    source: dict[str, Any]
    title: str | None
    url: str | None  # the canonical URL fetched (YouTube); None for an upload
    facts: VideoParams  # what the price is computed from: probed upload, YouTube's metadata


async def resolve_source(
    req: EstimateIn | RunIn, *, user: User, store: ResultStore, youtube: YoutubeMetadata
) -> ResolvedSource:
    """Where the video comes from and its facts; refuses non-YouTube URLs and others' uploads.

    A YouTube video's facts are read from its metadata (``video_unavailable``,
    ``download_failed``, ``video_too_long`` as the download would say them)."""
    if req.youtube_url is not None:
        video_id = parse_youtube_video_id(req.youtube_url)
        url = youtube_watch_url(video_id)
        probed = await youtube.probe(video_id)
        facts = VideoParams(duration_s=probed.duration_s, width=probed.width,
                            height=probed.height)
        return ResolvedSource("youtube", video_id, youtube_source(url),
                              probed.meta.title or None, url, facts)
    assert req.upload_id is not None
    stored = await load_stored_upload(store, upload_id=req.upload_id, user_id=user.user_id)
    up = stored.upload
    meta = VideoMeta(
        title=up.meta.title,
        description=up.meta.description,
        tags=tuple(up.meta.tags),
        channel=up.meta.channel,
        published_at=up.meta.published_at,
        duration_s=up.duration_s,
        language=up.meta.language,
        category_id=up.meta.category_id,
        channel_follower_count=up.meta.channel_follower_count,
    )
    source = upload_source(stored.file_key, meta)
    facts = VideoParams(duration_s=up.duration_s, width=up.width, height=up.height)
    return ResolvedSource("upload", up.video_id, source, up.meta.title or None, None, facts)


def _inline_profile(inline: InlineProfileIn, *, user: User,
                    settings: Settings) -> profiles_repo.Profile:
    """An inline profile as the user's private profile (its id is derived when resolved), its
    model-backed components pinned to this deployment's defaults unless the request pins."""
    return pin_default_models(profiles_repo.Profile(
        profile_id="",
        name="inline profile",
        user_id=user.user_id,
        description="created from a run request",
        sampling=dict(inline.sampling),
        render=dict(inline.render),
        components=tuple(c.to_profile_component() for c in inline.components),
    ), settings.triton.models)


async def _resolve_profile(
    conn: asyncpg.Connection, req: EstimateIn | RunIn, *, user: User, settings: Settings,
    serving: ModelServingProbe | None,
) -> ResolvedProfile:
    """The requested profile with the cache window of THIS request as its ``cache_ttl_days``.

    The window is decided here once, for the estimate and the creation alike (so a quote's
    ``cached`` and total are what creation charges): the request's own ``cache_ttl_days``, else
    the user's account setting (``/api/me/settings``; every account has one, default 3, and it
    takes the place of the profile's own window); never above ``api.max_cache_ttl_days``.
    With ``serving`` (the API's readiness fact), a model-backed profile is refused while no
    model server is ready (``503 model_serving_unavailable``, ``Retry-After``).
    """
    prof = await resolve_profile(
        conn,
        user_id=user.user_id,
        profile_id=req.profile_id,
        inline=(None if req.profile is None
                else _inline_profile(req.profile, user=user, settings=settings)),
        inline_cache_ttl_days=settings.api.default_cache_ttl_days,
        models_served=settings.triton.enabled,
        triton=settings.triton,
        serving=serving,
        llm=settings.llm,
    )
    days = req.cache_ttl_days
    if days is None:
        account = await users_repo.get_settings(conn, user_id=user.user_id)
        days = account.cache_ttl_days
    return replace(prof, cache_ttl_days=min(days, settings.api.max_cache_ttl_days))


def _estimate_out(est: Estimate, src: ResolvedSource, available: Decimal, *,
                  cached: bool) -> EstimateOut:
    return EstimateOut(
        platform_id=src.platform_id,  # type: ignore[arg-type]
        video_id=src.video_id,
        source_url=src.url,
        video=PricedVideoOut(duration_s=est.video.duration_s, width=est.video.width,
                             height=est.video.height),
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
    serving: ModelServingProbe | None,
    youtube: YoutubeMetadata,
) -> EstimateOut:
    """Price and time of the requested run — the body creation takes, checked as creation
    checks it (the callback URL, ``max_total``: ``409 price_changed`` above it); nothing is
    written."""
    src = await resolve_source(req, user=user, store=store, youtube=youtube)
    prof = await _resolve_profile(conn, req, user=user, settings=settings, serving=serving)
    await _check_callback(req, settings)
    hit = await find_cached(conn, profile=prof, video_id=src.video_id, source=src.source,
                            ttl_days=prof.cache_ttl_days)
    est = await estimate(conn, profile=prof.config, video=src.facts, settings=settings,
                         reuse=hit is not None)
    check_max_total(est.total, req.max_total)
    return _estimate_out(est, src, user.available, cached=hit is not None)


async def _check_callback(req: EstimateIn | RunIn, settings: Settings) -> None:
    if req.callback_url is not None:
        await check_callback_url(
            req.callback_url, allow_loopback=settings.api.webhook_allow_loopback
        )


def request_fingerprint(src: ResolvedSource, prof: ResolvedProfile, req: RunIn) -> str:
    """What makes two run requests "the same" for an Idempotency-Key replay."""
    parts = [src.platform_id, src.video_id, prof.config_hash, req.callback_url or "",
             str(req.cache_ttl_days), str(req.max_total)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


async def create_run(
    conn: asyncpg.Connection,
    req: RunIn,
    *,
    user: User,
    idempotency_key: str | None,
    settings: Settings,
    store: ResultStore,
    serving: ModelServingProbe | None,
    youtube: YoutubeMetadata,
) -> tuple[runs_repo.Run, bool, EstimateOut | None]:
    """Create (or replay) a run; returns ``(run, created, estimate)``."""
    if idempotency_key is not None and not (
        1 <= len(idempotency_key) <= 128 and idempotency_key.isprintable()
        and "#" not in idempotency_key
    ):
        raise InputError("Idempotency-Key must be 1-128 printable characters without '#'",
                         field="Idempotency-Key")
    src = await resolve_source(req, user=user, store=store, youtube=youtube)
    prof = await _resolve_profile(conn, req, user=user, settings=settings, serving=serving)
    await _check_callback(req, settings)
    billed = await create_billed_run(
        conn,
        user_id=user.user_id,
        profile=prof,
        platform_id=src.platform_id,  # type: ignore[arg-type]
        video_id=src.video_id,
        source=src.source,
        video=src.facts,
        settings=settings,
        title=src.title,
        idempotency_key=idempotency_key,
        fingerprint=request_fingerprint(src, prof, req),
        callback_url=req.callback_url,
        max_total=req.max_total,
        cache_ttl_days=prof.cache_ttl_days,
    )
    est = None
    if billed.estimate is not None:
        est = _estimate_out(billed.estimate, src, user.available - billed.estimate.total,
                            cached=billed.reused)
    return billed.run, billed.created, est


def creation_warnings(req: RunIn, settings: Settings) -> list[str]:
    """What a created run's answer warns about: a ``callback_url`` on a deployment whose
    webhooks are off (no ``api.webhook_key``) is kept with the run but never called."""
    if req.callback_url is not None and settings.api.webhook_key is None:
        return ["callback_url: webhooks are off on this deployment, so nothing will be "
                "delivered to it; poll GET /api/runs/{run_id}/status instead"]
    return []


async def shown_reused_from(conn: asyncpg.Connection, run: runs_repo.Run) -> uuid.UUID | None:
    """The cached run a reuse points at, as its user may see it: only a run of the same user
    (another user's run id is never shown)."""
    if run.reused_from_run_id is None:
        return None
    cached = await runs_repo.get_run(conn, run_id=run.reused_from_run_id)
    return cached.run_id if cached.user_id is not None and cached.user_id == run.user_id else None


async def public_run(conn: asyncpg.Connection, run: runs_repo.Run) -> RunOut:
    """:func:`run_out` with the reused-from run shown only to its own user."""
    out = run_out(run)
    out.reused_from_run_id = await shown_reused_from(conn, run)
    return out


def run_out(run: runs_repo.Run) -> RunOut:
    """The public view of a run row (the stored idempotency fingerprint stays private).

    The API answers with :func:`public_run`."""
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
        reused_from_run_id=await shown_reused_from(conn, run),
        updated_at=run.updated_at,
    )


def artifact_run_id(run: runs_repo.Run) -> uuid.UUID:
    """Whose files hold this run's results: its own, or the cached run it reuses."""
    return run.reused_from_run_id or run.run_id
