"""Analysis profiles: which components run, with which params and models.

Built-in profiles have no owner (``user_id`` NULL) and everyone sees them; a user sees built-in,
public and their own profiles. The profile in the database is the source of truth at run time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from trendflow.contracts.profile import ModelRef, ProfileConfig
from trendflow.db.repositories._base import domain_errors
from trendflow.errors import ProfileNotFound


@dataclass(frozen=True, slots=True)
class ModelMapping:
    model_name: str
    model_version: str
    engine: str = "triton"
    precision: str = "fp32"
    device_policy: str = "auto"
    weights_digest: str | None = None

    @property
    def ref(self) -> str:
        """``name:version``."""
        return f"{self.model_name}:{self.model_version}"


@dataclass(frozen=True, slots=True)
class ProfileComponent:
    component_name: str
    required: bool = True
    enabled: bool = True
    params: dict[str, Any] = field(default_factory=dict)
    models: tuple[ModelMapping, ...] = ()


@dataclass(frozen=True, slots=True)
class Profile:
    profile_id: str
    name: str
    user_id: uuid.UUID | None = None
    description: str = ""
    is_public: bool = False
    sampling: dict[str, Any] = field(default_factory=dict)
    render: dict[str, Any] = field(default_factory=dict)
    cache_ttl_days: int = 3
    components: tuple[ProfileComponent, ...] = ()
    created_at: datetime | None = None
    updated_at: datetime | None = None
    archived_at: datetime | None = None

    @property
    def builtin(self) -> bool:
        return self.user_id is None

    def config(self) -> ProfileConfig:
        """The profile as the validated :class:`ProfileConfig` that ``config_hash`` hashes
        (:class:`~trendflow.errors.InvalidProfile` when it does not validate)."""
        return ProfileConfig.parse(
            {
                "components": [
                    {
                        "name": c.component_name,
                        "params": dict(c.params),
                        "required": c.required,
                        "enabled": c.enabled,
                    }
                    for c in self.components
                ],
                "sampling": dict(self.sampling),
                "render": dict(self.render),
            }
        )

    def pinned_models(self) -> dict[str, ModelRef]:
        """The ``component → model:version`` mapping of the enabled components."""
        mapping: dict[str, ModelRef] = {}
        for comp in self.components:
            if comp.enabled and comp.models:
                model = comp.models[0]
                mapping[comp.component_name] = ModelRef(
                    name=model.model_name,
                    version=model.model_version,
                    weights_digest=model.weights_digest,
                )
        return mapping


_PROFILE_COLS = (
    "profile_id, user_id, name, description, is_public, sampling, render, cache_ttl_days, "
    "created_at, updated_at, archived_at"
)


async def _load(conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> list[Profile]:
    ids = [r["profile_id"] for r in rows]
    comps = await conn.fetch(
        "SELECT profile_id, component_name, enabled, required, params FROM profile_components "
        "WHERE profile_id = ANY($1::text[]) ORDER BY profile_id, component_name",
        ids,
    )
    maps = await conn.fetch(
        "SELECT profile_id, component_name, model_name, model_version, weights_digest, engine, "
        "precision, device_policy FROM profile_model_mapping WHERE profile_id = ANY($1::text[]) "
        "ORDER BY profile_id, component_name, model_name",
        ids,
    )
    models: dict[tuple[str, str], list[ModelMapping]] = {}
    for m in maps:
        models.setdefault((m["profile_id"], m["component_name"]), []).append(
            ModelMapping(
                model_name=m["model_name"],
                model_version=m["model_version"],
                engine=m["engine"],
                precision=m["precision"],
                device_policy=m["device_policy"],
                weights_digest=m["weights_digest"],
            )
        )
    by_profile: dict[str, list[ProfileComponent]] = {}
    for c in comps:
        by_profile.setdefault(c["profile_id"], []).append(
            ProfileComponent(
                component_name=c["component_name"],
                required=c["required"],
                enabled=c["enabled"],
                params=c["params"],
                models=tuple(models.get((c["profile_id"], c["component_name"]), ())),
            )
        )
    return [Profile(**dict(r), components=tuple(by_profile.get(r["profile_id"], ()))) for r in rows]


async def get_profile(
    conn: asyncpg.Connection, *, profile_id: str, user_id: uuid.UUID | None = None
) -> Profile:
    """The profile with its components and models.

    With ``user_id``: only if that user may see it (built-in, public or their own).
    """
    rows = await conn.fetch(
        f"SELECT {_PROFILE_COLS} FROM analysis_profiles WHERE profile_id = $1 "
        f"AND ($2::uuid IS NULL OR user_id IS NULL OR is_public OR user_id = $2)",
        profile_id,
        user_id,
    )
    if not rows:
        raise ProfileNotFound(f"profile {profile_id!r} does not exist", profile_id=profile_id)
    return (await _load(conn, rows))[0]


async def list_profiles(
    conn: asyncpg.Connection, *, user_id: uuid.UUID | None = None, include_archived: bool = False
) -> list[Profile]:
    """Built-in and public profiles, plus the user's own (all of them without ``user_id``)."""
    rows = await conn.fetch(
        f"SELECT {_PROFILE_COLS} FROM analysis_profiles "
        f"WHERE ($1::uuid IS NULL OR user_id IS NULL OR is_public OR user_id = $1) "
        f"AND ($2 OR archived_at IS NULL) ORDER BY user_id NULLS FIRST, profile_id",
        user_id,
        include_archived,
    )
    return await _load(conn, rows)


async def profile_owner(
    conn: asyncpg.Connection, *, profile_id: str
) -> tuple[bool, uuid.UUID | None]:
    """Whether the profile id exists (archived ones too), and its owner (None: built in)."""
    row = await conn.fetchrow(
        "SELECT user_id FROM analysis_profiles WHERE profile_id = $1", profile_id
    )
    return (False, None) if row is None else (True, row["user_id"])


async def save_profile(conn: asyncpg.Connection, *, profile: Profile) -> Profile:
    """Insert or replace a profile with all its components and model mappings (atomically)."""
    with domain_errors(f"save profile {profile.profile_id!r}"):
        async with conn.transaction():
            await conn.execute(
                """
                INSERT INTO analysis_profiles (profile_id, user_id, name, description,
                    is_public, sampling, render, cache_ttl_days)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (profile_id) DO UPDATE SET user_id = EXCLUDED.user_id,
                    name = EXCLUDED.name, description = EXCLUDED.description,
                    is_public = EXCLUDED.is_public, sampling = EXCLUDED.sampling,
                    render = EXCLUDED.render, cache_ttl_days = EXCLUDED.cache_ttl_days,
                    archived_at = NULL, updated_at = now()
                """,
                profile.profile_id,
                profile.user_id,
                profile.name,
                profile.description,
                profile.is_public,
                profile.sampling,
                profile.render,
                profile.cache_ttl_days,
            )
            await conn.execute(
                "DELETE FROM profile_components WHERE profile_id = $1", profile.profile_id
            )
            await conn.executemany(
                "INSERT INTO profile_components (profile_id, component_name, enabled, required, "
                "params) VALUES ($1, $2, $3, $4, $5)",
                [
                    (profile.profile_id, c.component_name, c.enabled, c.required, c.params)
                    for c in profile.components
                ],
            )
            await conn.executemany(
                "INSERT INTO profile_model_mapping (profile_id, component_name, model_name, "
                "model_version, weights_digest, engine, precision, device_policy) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                [
                    (
                        profile.profile_id,
                        c.component_name,
                        m.model_name,
                        m.model_version,
                        m.weights_digest,
                        m.engine,
                        m.precision,
                        m.device_policy,
                    )
                    for c in profile.components
                    for m in c.models
                ],
            )
    return await get_profile(conn, profile_id=profile.profile_id)


async def archive_profile(conn: asyncpg.Connection, *, profile_id: str, user_id: uuid.UUID) -> None:
    """Hide one of the user's own profiles (runs keep referring to it)."""
    status = await conn.execute(
        "UPDATE analysis_profiles SET archived_at = now(), updated_at = now() "
        "WHERE profile_id = $1 AND user_id = $2 AND archived_at IS NULL",
        profile_id,
        user_id,
    )
    if status.endswith(" 0"):
        raise ProfileNotFound(f"profile {profile_id!r} does not exist", profile_id=profile_id)
