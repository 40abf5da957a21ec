"""Bulk reprocessing: queue new runs for stored videos, through the same path as the API.

Selection (combined with AND): ``--video-ids`` (comma-separated), ``--profile`` (the profile to
run; by default each video's latest run's profile, which the filter ``--only-profile`` narrows),
``--since``/``--until`` (the video's latest run creation time, ISO dates). ``--dry-run`` lists
what would be queued and writes nothing. Runs belong to the system account
(``runtime.system_user_email``, created as an admin on first use) and are not billed.

Submit it to the cluster (token auth on; see ``docs/runtime.md``)::

    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 \\
        -- python -m trendflow.jobs.reprocess --profile fast --since 2026-01-01
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import asyncpg

from trendflow import jobs
from trendflow.db.pool import open_database
from trendflow.db.repositories import runs as runs_repo
from trendflow.db.repositories import users as users_repo
from trendflow.errors import InputError, UserNotFound
from trendflow.runs.enqueue import enqueue_run
from trendflow.runs.request import resolve_profile
from trendflow.settings import Settings


@dataclass(frozen=True, slots=True)
class Candidate:
    platform_id: str
    video_id: str
    profile_id: str
    source: dict[str, Any]


def _day(text: str | None, *, end: bool) -> datetime | None:
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{text!r} is not an ISO date (YYYY-MM-DD)", field="date") from None
    return datetime.combine(day, time.max if end else time.min, tzinfo=UTC)


async def select_videos(
    conn: asyncpg.Connection,
    *,
    video_ids: Sequence[str] | None,
    profile_id: str | None,
    only_profile: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[Candidate]:
    """Each selected video once, with the source and profile of its latest run."""
    rows = await runs_repo.latest_run_per_video(conn, video_ids=video_ids)
    out = []
    for r in rows:
        if only_profile and r["profile_id"] != only_profile:
            continue
        if (since and r["created_at"] < since) or (until and r["created_at"] > until):
            continue
        out.append(
            Candidate(r["platform_id"], r["video_id"], profile_id or r["profile_id"],
                      dict(r["source"]))
        )
    return out


async def system_user(conn: asyncpg.Connection, email: str) -> users_repo.User:
    """The system account bulk jobs run as (created on first use)."""
    try:
        return await users_repo.get_user_by_email(conn, email=email)
    except UserNotFound:
        return await users_repo.create_user(conn, email=email, role="admin",
                                            display_name="TrendFlow system")


async def reprocess(args: argparse.Namespace, settings: Settings) -> int:
    video_ids = [v for v in (args.video_ids or "").split(",") if v] or None
    db = await open_database(settings, migrate=False)
    try:
        async with db.acquire() as conn:
            found = await select_videos(
                conn,
                video_ids=video_ids,
                profile_id=args.profile,
                only_profile=args.only_profile,
                since=_day(args.since, end=False),
                until=_day(args.until, end=True),
            )
            print(f"reprocess: {len(found)} videos selected", flush=True)
            if args.dry_run:
                for c in found:
                    print(f"would queue {c.platform_id}/{c.video_id} profile={c.profile_id}",
                          flush=True)
                return 0
            user = await system_user(conn, settings.runtime.system_user_email)
            for i, c in enumerate(found, 1):
                profile = await resolve_profile(conn, user_id=user.user_id,
                                                profile_id=c.profile_id,
                                                triton=settings.triton)
                run, _ = await enqueue_run(
                    conn,
                    user_id=user.user_id,
                    profile=profile,
                    platform_id=c.platform_id,  # type: ignore[arg-type]
                    video_id=c.video_id,
                    source=c.source,
                )
                print(f"[{i}/{len(found)}] queued {c.platform_id}/{c.video_id} "
                      f"profile={c.profile_id} run={run.run_id}", flush=True)
    finally:
        await db.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trendflow.jobs.reprocess",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--video-ids", help="comma-separated video ids")
    parser.add_argument("--profile", help="profile to run (default: each video's last one)")
    parser.add_argument("--only-profile", help="select videos last analysed with this profile")
    parser.add_argument("--since", help="latest run created on/after this date (YYYY-MM-DD)")
    parser.add_argument("--until", help="latest run created on/before this date (YYYY-MM-DD)")
    parser.add_argument("--dry-run", action="store_true", help="list, queue nothing")
    return parser


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    return jobs.run_job(build_parser(), reprocess, argv, settings)


if __name__ == "__main__":
    sys.exit(main())
