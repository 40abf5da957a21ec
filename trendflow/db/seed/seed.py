"""Load ``seed.json`` — built-in profiles, model mapping, resource requirements, pricing (of
the components, and of the ``stages`` that are not components: the render).

Seeding is idempotent. By default it only adds what is missing, so figures an operator changed
in the database (the source of truth at run time) survive a re-seed; ``update=True`` makes the
database match the file again for every row the file names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import asyncpg

from trendflow.db.repositories import catalog, profiles
from trendflow.db.repositories.catalog import ComponentPrice, ResourceRequirement
from trendflow.db.repositories.profiles import ModelMapping, Profile, ProfileComponent
from trendflow.errors import ConfigError

SEED_FILE = Path(__file__).with_name("seed.json")


@dataclass(frozen=True, slots=True)
class SeedData:
    requirements: tuple[ResourceRequirement, ...]
    prices: tuple[ComponentPrice, ...]
    profiles: tuple[Profile, ...]


@dataclass(slots=True)
class SeedReport:
    inserted: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, *, inserted: bool) -> None:
        target = self.inserted if inserted else self.updated
        target[kind] = target.get(kind, 0) + 1


def _dec(value: Any, where: str) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ConfigError(f"seed: {where} must be a decimal, got {value!r}") from exc


def _price(name: str, pr: dict[str, Any]) -> ComponentPrice:
    def money(key: str) -> Decimal:
        return _dec(pr[key], f"{name}.pricing.{key}")

    return ComponentPrice(
        component_name=name,
        unit=pr["unit"],
        base_cost=money("base_cost"),
        cpu_cost_per_s=money("cpu_cost_per_s"),
        gpu_cost_per_s=money("gpu_cost_per_s"),
        cpu_s_per_unit=money("cpu_s_per_unit"),
        gpu_s_per_unit=money("gpu_s_per_unit"),
        markup=money("markup"),
        cache_price=money("cache_price"),
        resolution_factors=pr["resolution_factors"],
        duration_factor_mode=pr["duration_factor_mode"],
        duration_factor_params=pr["duration_factor_params"],
        source=pr["source"],
    )


def load_seed(path: Path = SEED_FILE) -> SeedData:
    """Parse and check the seed file (every profile component must be in the catalog)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        catalog_doc: dict[str, Any] = doc["components"]
        requirements, prices, models = [], [], {}
        for name, spec in catalog_doc.items():
            res, pr = spec["resources"], spec["pricing"]
            requirements.append(
                ResourceRequirement(
                    component_name=name,
                    engine=spec["engine"],
                    memory_per_task=int(res["memory_per_task"]),
                    gpu_memory_per_task=int(res["gpu_memory_per_task"]),
                    cpu_cores_per_task=_dec(res["cpu_cores_per_task"], f"{name}.cpu_cores"),
                    source=res["source"],
                )
            )
            prices.append(_price(name, pr))
            models[name] = tuple(ModelMapping(**m) for m in spec.get("models", ()))
        # Priced stages that are not components (the render of engine: llm profiles).
        prices += [_price(name, spec["pricing"]) for name, spec in doc.get("stages", {}).items()]
        built: list[Profile] = []
        for p in doc["profiles"]:
            comps = []
            for c in p["components"]:
                name = c["component_name"]
                if name not in catalog_doc:
                    raise ConfigError(
                        f"seed: profile {p['profile_id']!r} uses {name!r}, which is not in "
                        f"the components catalog of {path}"
                    )
                comps.append(
                    ProfileComponent(
                        component_name=name,
                        required=bool(c["required"]),
                        params=dict(c.get("params", {})),
                        models=models[name],
                    )
                )
            built.append(
                Profile(
                    profile_id=p["profile_id"],
                    name=p["name"],
                    description=p["description"],
                    is_public=bool(p["is_public"]),
                    sampling=p["sampling"],
                    render=p["render"],
                    cache_ttl_days=int(p["cache_ttl_days"]),
                    components=tuple(comps),
                )
            )
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"seed file {path} is unreadable or malformed: {exc!r}") from exc
    return SeedData(tuple(requirements), tuple(prices), tuple(built))


async def apply_seed(
    conn: asyncpg.Connection, *, seed: SeedData | None = None, update: bool = False
) -> SeedReport:
    """Write the seed in one transaction; returns what was inserted and updated."""
    seed = seed or load_seed()
    report = SeedReport()
    async with conn.transaction():
        have_rr = set(await catalog.get_resource_requirements(conn))
        have_price = set(await catalog.get_pricing(conn))
        have_profiles = {
            r["profile_id"] for r in await conn.fetch("SELECT profile_id FROM analysis_profiles")
        }
        for rr in seed.requirements:
            if update or rr.component_name not in have_rr:
                await catalog.upsert_resource_requirement(conn, requirement=rr)
                report.count("resource_requirements", inserted=rr.component_name not in have_rr)
        for price in seed.prices:
            if update or price.component_name not in have_price:
                await catalog.upsert_pricing(conn, price=price)
                report.count("pricing", inserted=price.component_name not in have_price)
        for profile in seed.profiles:
            if update or profile.profile_id not in have_profiles:
                await profiles.save_profile(conn, profile=profile)
                report.count("profiles", inserted=profile.profile_id not in have_profiles)
    return report
