"""Per-run component rows and the artifacts (NPZ files) they produced."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import asyncpg

from trendflow.db.repositories._base import columns, domain_errors, row_to
from trendflow.errors import ComponentNotFound

if TYPE_CHECKING:
    from trendflow.contracts.manifest import ComponentRecord

ComponentStatus = Literal["pending", "running", "ok", "empty", "error", "skipped"]
COMPONENT_STATUSES: tuple[str, ...] = ("pending", "running", "ok", "empty", "error", "skipped")


@dataclass(frozen=True, slots=True)
class RunComponent:
    run_id: uuid.UUID
    component_name: str
    status: str
    required: bool
    schema_version: int | None
    producer_version: str | None
    model: str | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    device_used: str | None
    error: dict[str, Any] | None
    empty_reason: str | None
    notes: list[Any]
    peak_ram_mb: float | None
    gpu_memory_mb: float | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Artifact:
    key: str
    run_id: uuid.UUID
    component_name: str
    size_bytes: int
    sha256: str
    created_at: datetime


_RC = columns(RunComponent)
_ART = columns(Artifact)


async def add_run_components(
    conn: asyncpg.Connection, *, run_id: uuid.UUID, components: Iterable[tuple[str, bool]]
) -> None:
    """Register the run's components as ``pending``: ``(component_name, required)`` pairs."""
    with domain_errors(f"add components of run {run_id}"):
        await conn.executemany(
            "INSERT INTO run_components (run_id, component_name, required) VALUES ($1, $2, $3)",
            [(run_id, name, required) for name, required in components],
        )


async def upsert_run_component(
    conn: asyncpg.Connection,
    *,
    run_id: uuid.UUID,
    component_name: str,
    status: ComponentStatus,
    required: bool = True,
    schema_version: int | None = None,
    producer_version: str | None = None,
    model: str | None = None,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    duration_ms: int | None = None,
    device_used: str | None = None,
    error: dict[str, Any] | None = None,
    empty_reason: str | None = None,
    notes: list[Any] | None = None,
    peak_ram_mb: float | None = None,
    gpu_memory_mb: float | None = None,
) -> RunComponent:
    """Write the full state of one component of a run (insert or replace)."""
    with domain_errors(f"write component {component_name} of run {run_id}"):
        row = await conn.fetchrow(
            f"""
            INSERT INTO run_components (run_id, component_name, status, required,
                schema_version, producer_version, model, started_at, finished_at, duration_ms,
                device_used, error, empty_reason, notes, peak_ram_mb, gpu_memory_mb)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
            ON CONFLICT (run_id, component_name) DO UPDATE SET
                status = EXCLUDED.status, required = EXCLUDED.required,
                schema_version = EXCLUDED.schema_version,
                producer_version = EXCLUDED.producer_version, model = EXCLUDED.model,
                started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
                duration_ms = EXCLUDED.duration_ms, device_used = EXCLUDED.device_used,
                error = EXCLUDED.error, empty_reason = EXCLUDED.empty_reason,
                notes = EXCLUDED.notes, peak_ram_mb = EXCLUDED.peak_ram_mb,
                gpu_memory_mb = EXCLUDED.gpu_memory_mb, updated_at = now()
            RETURNING {_RC}
            """,
            run_id,
            component_name,
            status,
            required,
            schema_version,
            producer_version,
            model,
            started_at,
            finished_at,
            duration_ms,
            device_used,
            error,
            empty_reason,
            list(notes or []),
            peak_ram_mb,
            gpu_memory_mb,
        )
    return row_to(RunComponent, row)


async def list_run_components(conn: asyncpg.Connection, *, run_id: uuid.UUID) -> list[RunComponent]:
    rows = await conn.fetch(
        f"SELECT {_RC} FROM run_components WHERE run_id = $1 ORDER BY component_name", run_id
    )
    return [row_to(RunComponent, r) for r in rows]


async def get_run_component(
    conn: asyncpg.Connection, *, run_id: uuid.UUID, component_name: str
) -> RunComponent:
    row = await conn.fetchrow(
        f"SELECT {_RC} FROM run_components WHERE run_id = $1 AND component_name = $2",
        run_id,
        component_name,
    )
    if row is None:
        raise ComponentNotFound(
            f"run {run_id} has no component {component_name}",
            run_id=str(run_id),
            component=component_name,
        )
    return row_to(RunComponent, row)


async def add_artifact(
    conn: asyncpg.Connection,
    *,
    key: str,
    run_id: uuid.UUID,
    component_name: str,
    size_bytes: int,
    sha256: str,
) -> Artifact:
    """Record an artifact (re-recording the same key updates its size and hash)."""
    with domain_errors(f"record artifact {key}"):
        row = await conn.fetchrow(
            f"""
            INSERT INTO artifacts (key, run_id, component_name, size_bytes, sha256)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (key) DO UPDATE SET size_bytes = EXCLUDED.size_bytes,
                sha256 = EXCLUDED.sha256, run_id = EXCLUDED.run_id,
                component_name = EXCLUDED.component_name
            RETURNING {_ART}
            """,
            key,
            run_id,
            component_name,
            size_bytes,
            sha256,
        )
    return row_to(Artifact, row)


def _record_columns(record: ComponentRecord) -> dict[str, Any]:
    """The ``run_components`` columns of a manifest component record: the one mapping from
    the manifest to the index, used while a run executes and when the index is rebuilt."""
    return {
        "status": record.status,
        "required": record.required,
        "schema_version": record.schema_version,
        "producer_version": record.producer_version,
        "model": record.model,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "duration_ms": record.duration_ms,
        "device_used": record.device_used,
        "error": None if record.error is None else record.error.model_dump(mode="json"),
        "empty_reason": None if record.empty_reason is None else str(record.empty_reason),
        "notes": list(record.notes),
        "peak_ram_mb": record.peak_ram_mb,
        "gpu_memory_mb": record.gpu_memory_mb,
    }


async def record_component(
    conn: asyncpg.Connection, *, run_id: uuid.UUID, name: str, record: ComponentRecord
) -> None:
    """Index one manifest component record while its run executes: its ``run_components``
    row (whatever it held) and its artifacts."""
    await upsert_run_component(
        conn, run_id=run_id, component_name=name, **_record_columns(record)
    )
    for art in record.artifacts:
        await add_artifact(
            conn,
            key=art.key,
            run_id=run_id,
            component_name=name,
            size_bytes=art.size,
            sha256=art.sha256,
        )


# pending < running < a final status: a rebuild never moves a component's row down this order,
# nor from one final status to another.
_RANK = "CASE {} WHEN 'pending' THEN 0 WHEN 'running' THEN 1 ELSE 2 END"
_RESTORE_COLUMNS = (
    "status, required, schema_version, producer_version, model, started_at, finished_at, "
    "duration_ms, device_used, error, empty_reason, notes, peak_ram_mb, gpu_memory_mb"
)


async def restore_component(
    conn: asyncpg.Connection,
    *,
    run_id: uuid.UUID,
    name: str,
    record: ComponentRecord,
    accept_open: bool,
) -> tuple[bool, int]:
    """Index one manifest component record during a rebuild; returns ``(written, artifacts)``
    — whether its row changed, and how many artifact rows were added or corrected.

    Forward only: a row the index already has is replaced only when the record is not behind
    it (``pending`` < ``running`` < final, and a final status never turns into another), and
    only when something differs — so a manifest older than the index (a stale one) changes
    nothing, and an intact index is left untouched, ``updated_at`` included. Without
    ``accept_open`` (the index has the run but not ``running``: ended, or back in the queue)
    a record still ``pending``/``running`` is ignored — the ending or the re-queue decided
    those rows (a cancel puts open components back to ``pending``), and the next execution
    writes its own. Artifacts are restored when the row holds the record's status.
    """
    if not accept_open and record.status in ("pending", "running"):
        return False, 0
    cols = _record_columns(record)
    names = _RESTORE_COLUMNS.split(", ")
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in names)
    current = ", ".join(f"rc.{c}" for c in names)
    wanted = ", ".join(f"EXCLUDED.{c}" for c in names)
    old_rank, new_rank = _RANK.format("rc.status"), _RANK.format("EXCLUDED.status")
    with domain_errors(f"restore component {name} of run {run_id}"):
        written = await conn.fetchval(
            f"""
            INSERT INTO run_components AS rc (run_id, component_name, {_RESTORE_COLUMNS})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
            ON CONFLICT (run_id, component_name) DO UPDATE SET {sets}, updated_at = now()
            WHERE ({current}) IS DISTINCT FROM ({wanted})
              AND {new_rank} >= {old_rank}
              AND ({old_rank} < 2 OR rc.status = EXCLUDED.status)
            RETURNING true
            """,
            run_id,
            name,
            *(cols[c] for c in names),
        )
        status = await conn.fetchval(
            "SELECT status FROM run_components WHERE run_id = $1 AND component_name = $2",
            run_id,
            name,
        )
        artifacts = 0
        if status != record.status:
            return bool(written), artifacts
        for art in record.artifacts:
            artifacts += bool(await conn.fetchval(
                """
                INSERT INTO artifacts AS a (key, run_id, component_name, size_bytes, sha256)
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (key) DO UPDATE SET size_bytes = EXCLUDED.size_bytes,
                    sha256 = EXCLUDED.sha256, run_id = EXCLUDED.run_id,
                    component_name = EXCLUDED.component_name
                WHERE (a.size_bytes, a.sha256, a.run_id, a.component_name)
                      IS DISTINCT FROM (EXCLUDED.size_bytes, EXCLUDED.sha256, EXCLUDED.run_id,
                                        EXCLUDED.component_name)
                RETURNING true
                """,
                art.key,
                run_id,
                name,
                art.size,
                art.sha256,
            ))
    return bool(written), artifacts
