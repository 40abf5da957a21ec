"""Builders for billing tests: pinned prices, the "billing" profile, users, paid runs."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg

from trendflow.billing.ledger import top_up
from trendflow.billing.pricing import VideoParams
from trendflow.contracts.profile import ProfileConfig
from trendflow.db.repositories import catalog
from trendflow.db.repositories import components as rc_repo
from trendflow.db.repositories import profiles as profiles_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.db.repositories import users as users_repo
from trendflow.db.repositories.catalog import ComponentPrice
from trendflow.db.seed.seed import apply_seed
from trendflow.runs.admission import BilledRun, create_billed_run
from trendflow.runs.enqueue import enqueue_run
from trendflow.runs.lifecycle import end_run
from trendflow.runs.request import resolve_profile
from trendflow.settings import Settings

VIDEO = VideoParams(duration_s=60.0, width=1920, height=1080)

FAST = ("audio_features", "color_stats", "loudness", "metadata_features", "motion",
        "shot_detection")
OPTIONAL = "audio_features"  # optional in the "billing" profile
UNITS = {"audio_features": "audio_second", "color_stats": "frame", "loudness": "audio_second",
         "metadata_features": "run", "motion": "frame", "shot_detection": "frame"}


def pinned_price(name: str) -> ComponentPrice:
    """Fixed test prices (the seed's figures move with every benchmark)."""
    return ComponentPrice(
        component_name=name,
        unit=UNITS[name],
        base_cost=Decimal("0.50"),
        cpu_cost_per_s=Decimal("0.05"),
        gpu_cost_per_s=Decimal("0.40"),
        cpu_s_per_unit=Decimal("0.004"),
        gpu_s_per_unit=Decimal("0"),
        resolution_factors={"360": "0.9", "720": "1.0", "1080": "1.15"},
        duration_factor_mode="tiered",
        duration_factor_params={"tiers": [{"up_to_s": 300, "factor": "1.0"},
                                          {"up_to_s": 1200, "factor": "1.1"}]},
        markup=Decimal("0.30"),
        cache_price=Decimal("0.10"),
        source="test",
    )


async def prepare(conn: asyncpg.Connection) -> None:
    """Seed, pin the test prices and save the "billing" profile (the CPU components)."""
    await apply_seed(conn)
    for name in FAST:
        await catalog.upsert_pricing(conn, price=pinned_price(name))
    await profiles_repo.save_profile(
        conn,
        profile=profiles_repo.Profile(
            profile_id="billing",
            name="Billing tests",
            sampling={"fps": 12.0, "height": 320},
            render={"engine": "template"},
            components=tuple(
                profiles_repo.ProfileComponent(c, required=c != OPTIONAL) for c in FAST
            ),
        ),
    )


async def billing_config(conn: asyncpg.Connection) -> ProfileConfig:
    """The "billing" profile's config, as a resolved request carries it."""
    return (await profiles_repo.get_profile(conn, profile_id="billing")).config()


def video_id(n: int) -> str:
    return f"vid{n:08d}"


async def new_user(
    conn: asyncpg.Connection, *, credits: Decimal = Decimal(0), subscription: str = "free"
) -> uuid.UUID:
    user = await users_repo.create_user(
        conn, email=f"{uuid.uuid4().hex[:12]}@example.com", subscription=subscription  # type: ignore[arg-type]
    )
    if credits > 0:
        await top_up(conn, user_id=user.user_id, amount=credits, reason="test credits",
                     actor="admin@example.com")
    return user.user_id


async def paid_run(
    conn: asyncpg.Connection,
    user_id: uuid.UUID,
    n: int = 0,
    *,
    profile_id: str = "billing",
    settings: Settings | None = None,
    video: VideoParams = VIDEO,
    reuse: bool = False,
    idempotency_key: str | None = None,
) -> BilledRun:
    """A run created and paid for as the API does; ``reuse=True`` first leaves a finished
    run of the same work (of no user) for it to reuse from the cache."""
    vid = video_id(n)
    source = {"kind": "youtube", "url": f"https://www.youtube.com/watch?v={vid}"}
    profile = await resolve_profile(conn, user_id=user_id, profile_id=profile_id)
    if reuse:
        original, _ = await enqueue_run(conn, user_id=None, profile=profile,
                                        platform_id="youtube", video_id=vid, source=source)
        await finish(conn, original.run_id, status="ok",
                     components={c.name: "ok" for c in profile.config.enabled})
        await end_run(conn, run_id=original.run_id, status="ok")
    return await create_billed_run(
        conn,
        user_id=user_id,
        profile=profile,
        platform_id="youtube",
        video_id=vid,
        source=source,
        video=video,
        settings=settings or Settings(),
        idempotency_key=idempotency_key,
        cache_ttl_days=3 if reuse else 0,
    )


async def finish(
    conn: asyncpg.Connection,
    run_id: uuid.UUID,
    *,
    status: str,
    components: dict[str, str],
    finished_before_end: bool = True,
) -> None:
    """Move a run to ``status`` with each component ending as given (as the scheduler does)."""
    await runs_repo.set_run_status(conn, run_id=run_id, status="running")
    now = datetime.now().astimezone()
    done_at = now - timedelta(seconds=1) if finished_before_end else now + timedelta(hours=1)
    for name, comp_status in components.items():
        await rc_repo.upsert_run_component(
            conn,
            run_id=run_id,
            component_name=name,
            status=comp_status,  # type: ignore[arg-type]
            finished_at=None if comp_status in ("pending", "running") else done_at,
            error={"code": "component_failed", "message": "x"} if comp_status == "error" else None,
            empty_reason="no_faces_in_video" if comp_status == "empty" else None,
            duration_ms=None if comp_status in ("pending", "running") else 1000,
        )
    await runs_repo.set_run_status(conn, run_id=run_id, status=status)  # type: ignore[arg-type]

