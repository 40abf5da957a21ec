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


async def record_component(
    conn: asyncpg.Connection, *, run_id: uuid.UUID, name: str, record: ComponentRecord
) -> None:
    """Index one manifest component record: its ``run_components`` row and its artifacts.

    The one mapping from the manifest to the index, used while a run executes and when the
    index is rebuilt from manifests.
    """
    await upsert_run_component(
        conn,
        run_id=run_id,
        component_name=name,
        status=record.status,
        required=record.required,
        schema_version=record.schema_version,
        producer_version=record.producer_version,
        model=record.model,
        started_at=record.started_at,
        finished_at=record.finished_at,
        duration_ms=record.duration_ms,
        device_used=record.device_used,
        error=None if record.error is None else record.error.model_dump(mode="json"),
        empty_reason=None if record.empty_reason is None else str(record.empty_reason),
        notes=list(record.notes),
        peak_ram_mb=record.peak_ram_mb,
        gpu_memory_mb=record.gpu_memory_mb,
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
