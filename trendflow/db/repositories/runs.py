"""Runs: the queue (status ``queued``, FIFO by ``created_at``) and the history of analyses.

Status moves along ``queued → running → ok | error | cancelled``; a ``running`` run may go back
to ``queued`` (scheduler recovery) and a ``queued`` one may be cancelled or fail before it
starts, or end ``ok`` at once when it reuses a cached run's results (only with
``reused_from_run_id`` set: :func:`mark_reused`). Anything else raises
:class:`InvalidStatusTransition`. A run ends through :func:`trendflow.runs.end_run`, which
settles its credits in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from trendflow.db.repositories._base import columns, domain_errors, row_to
from trendflow.errors import InvalidStatusTransition, RunNotFound

RunStatus = Literal["queued", "running", "ok", "error", "cancelled"]
RUN_STATUSES: tuple[str, ...] = ("queued", "running", "ok", "error", "cancelled")
TERMINAL_STATUSES: frozenset[str] = frozenset({"ok", "error", "cancelled"})
_TRANSITIONS: dict[str, frozenset[str]] = {
    # ``ok`` straight from the queue: a cache reuse (checked in set_run_status).
    "queued": frozenset({"running", "cancelled", "error", "ok"}),
    "running": frozenset({"ok", "error", "cancelled", "queued"}),
    "ok": frozenset(),
    "error": frozenset(),
    "cancelled": frozenset(),
}


@dataclass(frozen=True, slots=True)
class QueuedRun:
    """A queued run as the planner sees it before claiming: id, profile, seconds waited."""

    run_id: str
    profile_config: dict[str, Any]
    age_s: float


@dataclass(frozen=True, slots=True)
class Run:
    run_id: uuid.UUID
    platform_id: str
    video_id: str
    user_id: uuid.UUID | None
    profile_id: str
    config_hash: str
    sampling_policy_version: str
    dataprocessor_version: str
    model_signature: str
    model_mapping: dict[str, Any]
    profile_config: dict[str, Any]
    source: dict[str, Any]
    status: str
    stage: str | None
    error: dict[str, Any] | None
    warnings: list[Any]
    reused_from_run_id: uuid.UUID | None
    idempotency_key: str | None
    callback_url: str | None
    worker_id: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    heartbeat_at: datetime | None = None  # refreshed while a scheduler executes it
    # The video facts its price was reserved for ({"duration_s", "width", "height"}; None: an
    # unbilled run): trendflow.runs.priced checks the fetched video against them.
    priced_video: dict[str, Any] | None = None


_RUN = columns(Run)


async def create_run(
    conn: asyncpg.Connection,
    *,
    run_id: uuid.UUID,
    platform_id: str,
    video_id: str,
    user_id: uuid.UUID | None,
    profile_id: str,
    config_hash: str,
    sampling_policy_version: str,
    dataprocessor_version: str,
    model_signature: str,
    model_mapping: Mapping[str, Any] | None = None,
    profile_config: Mapping[str, Any] | None = None,
    source: Mapping[str, Any] | None = None,
    status: RunStatus = "queued",
    stage: str | None = None,
    error: Mapping[str, Any] | None = None,
    warnings: list[Any] | None = None,
    reused_from_run_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
    callback_url: str | None = None,
    created_at: datetime | None = None,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    priced_video: Mapping[str, Any] | None = None,
) -> tuple[Run, bool]:
    """Insert a run; returns ``(run, created)``.

    With an ``idempotency_key`` already used by this user, nothing is inserted and the earlier
    run comes back with ``created=False``. The video row must exist (:func:`upsert_video`).
    """
    with domain_errors(f"create run {run_id}"):
        row = await conn.fetchrow(
            f"""
            INSERT INTO runs (run_id, platform_id, video_id, user_id, profile_id, config_hash,
                              sampling_policy_version, dataprocessor_version, model_signature,
                              model_mapping, profile_config, source, status, stage, error,
                              warnings, reused_from_run_id, idempotency_key, callback_url,
                              created_at, started_at, finished_at, priced_video)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                    $18, $19, COALESCE($20, now()), $21, $22, $23)
            ON CONFLICT (user_id, idempotency_key) DO NOTHING
            RETURNING {_RUN}
            """,
            run_id,
            platform_id,
            video_id,
            user_id,
            profile_id,
            config_hash,
            sampling_policy_version,
            dataprocessor_version,
            model_signature,
            dict(model_mapping or {}),
            dict(profile_config or {}),
            dict(source or {}),
            status,
            stage,
            None if error is None else dict(error),
            list(warnings or []),
            reused_from_run_id,
            idempotency_key,
            callback_url,
            created_at,
            started_at,
            finished_at,
            None if priced_video is None else dict(priced_video),
        )
    if row is not None:
        return row_to(Run, row), True
    existing = await conn.fetchrow(
        f"SELECT {_RUN} FROM runs WHERE user_id = $1 AND idempotency_key = $2",
        user_id,
        idempotency_key,
    )
    if existing is None:  # the conflicting run was deleted between the two statements
        raise RunNotFound(
            "the run of this idempotency key disappeared; retry", idempotency_key=idempotency_key
        )
    return row_to(Run, existing), False


async def get_run(
    conn: asyncpg.Connection,
    *,
    run_id: uuid.UUID,
    user_id: uuid.UUID | None = None,
    for_update: bool = False,
) -> Run:
    """The run; with ``user_id``, only if it is that user's (others' runs are 'not found').

    ``for_update`` locks the row until the caller's transaction ends.
    """
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {_RUN} FROM runs WHERE run_id = $1{lock}", run_id)
    if row is None or (user_id is not None and row["user_id"] != user_id):
        raise RunNotFound(f"run {run_id} does not exist", run_id=str(run_id))
    return row_to(Run, row)


async def list_runs(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID,
    limit: int = 50,
    created_before: datetime | None = None,
) -> list[Run]:
    """The user's runs, newest first (page with ``created_before`` = last row's created_at)."""
    rows = await conn.fetch(
        f"SELECT {_RUN} FROM runs WHERE user_id = $1 "
        f"AND ($2::timestamptz IS NULL OR created_at < $2) "
        f"ORDER BY created_at DESC, run_id LIMIT $3",
        user_id,
        created_before,
        limit,
    )
    return [row_to(Run, r) for r in rows]


async def claim_next_runs(conn: asyncpg.Connection, *, limit: int, worker_id: str) -> list[Run]:
    """Take up to ``limit`` of the oldest queued runs for ``worker_id`` and mark them running.

    ``FOR UPDATE SKIP LOCKED`` lets several schedulers claim at once without ever taking the
    same run twice; the claimed runs come back oldest first.
    """
    rows = await conn.fetch(
        f"""
        WITH next AS (
            SELECT run_id FROM runs
            WHERE status = 'queued'
            ORDER BY created_at, run_id
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        )
        UPDATE runs r SET status = 'running', worker_id = $2, attempts = r.attempts + 1,
                          started_at = COALESCE(r.started_at, now()), updated_at = now(),
                          heartbeat_at = now()
        FROM next WHERE r.run_id = next.run_id
        RETURNING {", ".join("r." + c for c in _RUN.split(", "))}
        """,
        limit,
        worker_id,
    )
    runs = [row_to(Run, r) for r in rows]
    runs.sort(key=lambda run: (run.created_at, run.run_id))
    return runs


async def set_run_status(
    conn: asyncpg.Connection,
    *,
    run_id: uuid.UUID,
    status: RunStatus,
    stage: str | None = None,
    error: Mapping[str, Any] | None = None,
) -> Run:
    """Move a run to ``status`` (validated against the allowed transitions).

    Terminal statuses set ``finished_at``; going back to ``queued`` clears the worker.
    """
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT status, reused_from_run_id FROM runs WHERE run_id = $1 FOR UPDATE", run_id
        )
        if row is None:
            raise RunNotFound(f"run {run_id} does not exist", run_id=str(run_id))
        current = row["status"]
        reuse = current == "queued" and status == "ok"
        if status not in _TRANSITIONS[current] or (reuse and row["reused_from_run_id"] is None):
            raise InvalidStatusTransition(
                f"run {run_id} cannot go from {current} to {status}",
                run_id=str(run_id),
                current=current,
                requested=status,
            )
        with domain_errors(f"set status of run {run_id}"):
            row = await conn.fetchrow(
                f"""
                UPDATE runs SET status = $2, stage = COALESCE($3, stage),
                    error = COALESCE($4, error),
                    finished_at = CASE WHEN $2 IN ('ok', 'error', 'cancelled') THEN now()
                                       ELSE finished_at END,
                    worker_id = CASE WHEN $2 = 'queued' THEN NULL ELSE worker_id END,
                    updated_at = now()
                WHERE run_id = $1 RETURNING {_RUN}
                """,
                run_id,
                status,
                stage,
                None if error is None else dict(error),
            )
    return row_to(Run, row)


async def mark_reused(
    conn: asyncpg.Connection,
    *,
    run_id: uuid.UUID,
    reused_from_run_id: uuid.UUID,
    warnings: Sequence[Any],
) -> None:
    """Point a queued run at a cached run's results (it then ends ``ok`` without running)."""
    status = await conn.execute(
        "UPDATE runs SET reused_from_run_id = $2, warnings = $3, started_at = now(), "
        "updated_at = now() WHERE run_id = $1 AND status = 'queued'",
        run_id,
        reused_from_run_id,
        list(warnings),
    )
    if status.endswith(" 0"):
        raise InvalidStatusTransition(
            f"run {run_id} left the queue before it could reuse run {reused_from_run_id}",
            run_id=str(run_id),
        )


async def find_by_idempotency_key(
    conn: asyncpg.Connection, *, user_id: uuid.UUID, key_prefix: str
) -> tuple[uuid.UUID, str] | None:
    """The user's run whose stored idempotency key starts with ``key_prefix``, and that key."""
    row = await conn.fetchrow(
        "SELECT run_id, idempotency_key FROM runs WHERE user_id = $1 "
        "AND starts_with(idempotency_key, $2)",
        user_id,
        key_prefix,
    )
    return None if row is None else (row["run_id"], row["idempotency_key"])


async def eta_inputs(conn: asyncpg.Connection, *, recent: int) -> tuple[int, float | None]:
    """Runs ahead in the queue (``queued`` + ``running``) and the mean wall time, in seconds,
    of the last ``recent`` finished original runs (None before the first)."""
    row = await conn.fetchrow(
        """
        SELECT (SELECT count(*) FROM runs WHERE status IN ('queued', 'running')) AS ahead,
               (SELECT avg(extract(epoch FROM finished_at - started_at)) FROM (
                   SELECT finished_at, started_at FROM runs
                   WHERE status = 'ok' AND started_at IS NOT NULL AND finished_at IS NOT NULL
                     AND reused_from_run_id IS NULL
                   ORDER BY finished_at DESC LIMIT $1) last) AS mean_run_s
        """,
        recent,
    )
    mean = row["mean_run_s"]
    return int(row["ahead"]), None if mean is None else float(mean)


async def lock_video_runs(
    conn: asyncpg.Connection, *, platform_id: str, video_id: str
) -> list[asyncpg.Record]:
    """The video's runs, oldest first, locked for the caller's transaction (a deletion):
    ``run_id, user_id, status, reused_from_run_id``."""
    return await conn.fetch(
        "SELECT run_id, user_id, status, reused_from_run_id FROM runs "
        "WHERE platform_id = $1 AND video_id = $2 ORDER BY created_at FOR UPDATE",
        platform_id,
        video_id,
    )


async def delete_runs(conn: asyncpg.Connection, *, run_ids: Sequence[uuid.UUID]) -> None:
    """Delete runs (their components, artifacts and render cache rows cascade)."""
    await conn.execute("DELETE FROM runs WHERE run_id = ANY($1)", list(run_ids))


async def forget_owners(conn: asyncpg.Connection, *, run_ids: Sequence[uuid.UUID]) -> None:
    """Unlink runs from their user (kept for others who reuse them): no user, callback,
    idempotency key, nor the user's rendered texts."""
    await conn.execute(
        "UPDATE runs SET user_id = NULL, callback_url = NULL, idempotency_key = NULL, "
        "updated_at = now() WHERE run_id = ANY($1)",
        list(run_ids),
    )
    await conn.execute("DELETE FROM render_cache WHERE run_id = ANY($1)", list(run_ids))


async def set_run_stage(conn: asyncpg.Connection, *, run_id: uuid.UUID, stage: str) -> None:
    status = await conn.execute(
        "UPDATE runs SET stage = $2, updated_at = now() WHERE run_id = $1", run_id, stage
    )
    if status.endswith(" 0"):
        raise RunNotFound(f"run {run_id} does not exist", run_id=str(run_id))


async def add_run_warning(conn: asyncpg.Connection, *, run_id: uuid.UUID, warning: Any) -> None:
    status = await conn.execute(
        "UPDATE runs SET warnings = warnings || jsonb_build_array($2::jsonb), updated_at = now() "
        "WHERE run_id = $1",
        run_id,
        warning,
    )
    if status.endswith(" 0"):
        raise RunNotFound(f"run {run_id} does not exist", run_id=str(run_id))


async def requeue_interrupted(conn: asyncpg.Connection, *, worker_id: str | None = None) -> int:
    """Put ``running`` runs (of one worker, or all) back in the queue; returns how many."""
    status = await conn.execute(
        "UPDATE runs SET status = 'queued', worker_id = NULL, updated_at = now() "
        "WHERE status = 'running' AND ($1::text IS NULL OR worker_id = $1)",
        worker_id,
    )
    return int(status.rsplit(" ", 1)[1])


async def beat_runs(
    conn: asyncpg.Connection, *, worker_id: str, run_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Refresh the heartbeat of ``worker_id``'s running runs among ``run_ids``; returns those
    still its own (a run missing was ended, or re-queued by a watchdog, meanwhile)."""
    rows = await conn.fetch(
        "UPDATE runs SET heartbeat_at = now() WHERE run_id = ANY($1) AND worker_id = $2 "
        "AND status = 'running' RETURNING run_id",
        list(run_ids),
        worker_id,
    )
    return {r["run_id"] for r in rows}


async def lock_stale_runs(
    conn: asyncpg.Connection, *, timeout_s: float, exclude: Sequence[uuid.UUID] = ()
) -> list[Run]:
    """``running`` runs without a heartbeat for ``timeout_s`` seconds (not in ``exclude``),
    locked for the caller's transaction (``SKIP LOCKED``: two watchdogs never take one run)."""
    rows = await conn.fetch(
        f"""
        SELECT {_RUN} FROM runs
        WHERE status = 'running' AND NOT (run_id = ANY($2::uuid[]))
          AND COALESCE(heartbeat_at, updated_at) < now() - make_interval(secs => $1)
        ORDER BY created_at, run_id
        FOR UPDATE SKIP LOCKED
        """,
        float(timeout_s),
        list(exclude),
    )
    return [row_to(Run, r) for r in rows]


async def peek_queued(conn: asyncpg.Connection, *, limit: int) -> list[QueuedRun]:
    """The oldest queued runs, FIFO, without locking them (for planning before the claim)."""
    rows = await conn.fetch(
        "SELECT run_id, profile_config, extract(epoch FROM now() - created_at) AS age "
        "FROM runs WHERE status = 'queued' ORDER BY created_at, run_id LIMIT $1",
        limit,
    )
    return [
        QueuedRun(str(r["run_id"]), dict(r["profile_config"]), float(r["age"])) for r in rows
    ]


async def latest_run_per_video(
    conn: asyncpg.Connection, *, video_ids: Sequence[str] | None = None
) -> list[asyncpg.Record]:
    """For each video (all, or those in ``video_ids``) with a known source, its newest run:
    ``platform_id, video_id, profile_id, source, created_at``."""
    return await conn.fetch(
        """
        SELECT DISTINCT ON (platform_id, video_id)
               platform_id, video_id, profile_id, source, created_at
        FROM runs
        WHERE ($1::text[] IS NULL OR video_id = ANY($1::text[]))
          AND source <> '{}'::jsonb
        ORDER BY platform_id, video_id, created_at DESC
        """,
        list(video_ids) if video_ids else None,
    )


async def queue_length(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM runs WHERE status = 'queued'"))


async def find_cached_run(
    conn: asyncpg.Connection,
    *,
    video_id: str,
    config_hash: str,
    model_signature: str,
    finished_after: datetime,
    source_meta: Mapping[str, Any] | None = None,
) -> Run | None:
    """The newest successful original run for the cache key finished after ``finished_after``;
    with ``source_meta``, only one whose source carried exactly that metadata."""
    row = await conn.fetchrow(
        f"""
        SELECT {_RUN} FROM runs
        WHERE video_id = $1 AND config_hash = $2 AND model_signature = $3
          AND status = 'ok' AND finished_at > $4 AND reused_from_run_id IS NULL
          AND ($5::jsonb IS NULL OR source -> 'meta' = $5::jsonb)
        ORDER BY finished_at DESC LIMIT 1
        """,
        video_id,
        config_hash,
        model_signature,
        finished_after,
        None if source_meta is None else dict(source_meta),
    )
    return None if row is None else row_to(Run, row)
