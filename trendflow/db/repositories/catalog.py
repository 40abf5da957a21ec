"""Per-component figures: resource requirements (scheduler) and pricing (billing)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from trendflow.db.repositories._base import columns, domain_errors, row_to
from trendflow.errors import ComponentNotFound


@dataclass(frozen=True, slots=True)
class ResourceRequirement:
    """What one task of a component needs: RAM MB, GPU memory MB, CPU cores."""

    component_name: str
    engine: str
    memory_per_task: int
    gpu_memory_per_task: int
    cpu_cores_per_task: Decimal
    source: str
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ComponentPrice:
    """The price formula's inputs for one component (see DESIGN.md §8)."""

    component_name: str
    unit: str
    base_cost: Decimal
    cpu_cost_per_s: Decimal
    gpu_cost_per_s: Decimal
    cpu_s_per_unit: Decimal
    gpu_s_per_unit: Decimal
    resolution_factors: dict[str, Any]
    duration_factor_mode: str
    duration_factor_params: dict[str, Any]
    markup: Decimal
    cache_price: Decimal
    source: str
    updated_at: datetime | None = None


_RR = columns(ResourceRequirement)
_PRICE = columns(ComponentPrice)


async def get_resource_requirements(
    conn: asyncpg.Connection, *, component_names: Iterable[str] | None = None
) -> dict[str, ResourceRequirement]:
    """Requirements by component (all, or the named ones — each must exist)."""
    names = None if component_names is None else sorted(set(component_names))
    rows = await conn.fetch(
        f"SELECT {_RR} FROM component_resource_requirements "
        f"WHERE $1::text[] IS NULL OR component_name = ANY($1::text[])",
        names,
    )
    found = {r["component_name"]: row_to(ResourceRequirement, r) for r in rows}
    missing = sorted(set(names or ()) - set(found))
    if missing:
        raise ComponentNotFound(
            f"no resource requirements for {missing}; run `trendflow db seed` or set them",
            components=missing,
        )
    return found


async def upsert_resource_requirement(
    conn: asyncpg.Connection, *, requirement: ResourceRequirement
) -> ResourceRequirement:
    r = requirement
    with domain_errors(f"save resource requirements of {r.component_name}"):
        row = await conn.fetchrow(
            f"""
            INSERT INTO component_resource_requirements (component_name, engine,
                memory_per_task, gpu_memory_per_task, cpu_cores_per_task, source)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (component_name) DO UPDATE SET engine = EXCLUDED.engine,
                memory_per_task = EXCLUDED.memory_per_task,
                gpu_memory_per_task = EXCLUDED.gpu_memory_per_task,
                cpu_cores_per_task = EXCLUDED.cpu_cores_per_task, source = EXCLUDED.source,
                updated_at = now()
            RETURNING {_RR}
            """,
            r.component_name,
            r.engine,
            r.memory_per_task,
            r.gpu_memory_per_task,
            r.cpu_cores_per_task,
            r.source,
        )
    return row_to(ResourceRequirement, row)


async def widest_profile_cpus(conn: asyncpg.Connection) -> float | None:
    """The most CPU cores any profile's enabled components ask for together (None: no
    profile)."""
    value = await conn.fetchval(
        "SELECT max(s) FROM (SELECT sum(r.cpu_cores_per_task) AS s "
        "FROM profile_components pc JOIN component_resource_requirements r "
        "USING (component_name) WHERE pc.enabled GROUP BY pc.profile_id) t"
    )
    return None if value is None else float(value)


async def profiled_components(conn: asyncpg.Connection) -> list[str]:
    """Every component enabled in some profile (ours and users'), by name: what a run can need
    (the scheduler's pools warm these workers when they start)."""
    rows = await conn.fetch(
        "SELECT DISTINCT component_name FROM profile_components WHERE enabled "
        "ORDER BY component_name"
    )
    return [str(r["component_name"]) for r in rows]


async def get_pricing(
    conn: asyncpg.Connection, *, component_names: Iterable[str] | None = None
) -> dict[str, ComponentPrice]:
    """Prices by component (all, or the named ones — each must exist)."""
    names = None if component_names is None else sorted(set(component_names))
    rows = await conn.fetch(
        f"SELECT {_PRICE} FROM component_pricing "
        f"WHERE $1::text[] IS NULL OR component_name = ANY($1::text[])",
        names,
    )
    found = {r["component_name"]: row_to(ComponentPrice, r) for r in rows}
    missing = sorted(set(names or ()) - set(found))
    if missing:
        raise ComponentNotFound(
            f"no pricing for {missing}; run `trendflow db seed` or set it", components=missing
        )
    return found


async def upsert_pricing(conn: asyncpg.Connection, *, price: ComponentPrice) -> ComponentPrice:
    p = price
    with domain_errors(f"save pricing of {p.component_name}"):
        row = await conn.fetchrow(
            f"""
            INSERT INTO component_pricing (component_name, unit, base_cost, cpu_cost_per_s,
                gpu_cost_per_s, cpu_s_per_unit, gpu_s_per_unit, resolution_factors,
                duration_factor_mode, duration_factor_params, markup, cache_price, source)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
            ON CONFLICT (component_name) DO UPDATE SET unit = EXCLUDED.unit,
                base_cost = EXCLUDED.base_cost, cpu_cost_per_s = EXCLUDED.cpu_cost_per_s,
                gpu_cost_per_s = EXCLUDED.gpu_cost_per_s,
                cpu_s_per_unit = EXCLUDED.cpu_s_per_unit,
                gpu_s_per_unit = EXCLUDED.gpu_s_per_unit,
                resolution_factors = EXCLUDED.resolution_factors,
                duration_factor_mode = EXCLUDED.duration_factor_mode,
                duration_factor_params = EXCLUDED.duration_factor_params,
                markup = EXCLUDED.markup, cache_price = EXCLUDED.cache_price,
                source = EXCLUDED.source, updated_at = now()
            RETURNING {_PRICE}
            """,
            p.component_name,
            p.unit,
            p.base_cost,
            p.cpu_cost_per_s,
            p.gpu_cost_per_s,
            p.cpu_s_per_unit,
            p.gpu_s_per_unit,
            p.resolution_factors,
            p.duration_factor_mode,
            p.duration_factor_params,
            p.markup,
            p.cache_price,
            p.source,
        )
    return row_to(ComponentPrice, row)
