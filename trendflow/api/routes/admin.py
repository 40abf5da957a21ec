"""``/api/admin``: users, tokens, top-ups, pricing, resource requirements, model mapping."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from trendflow.api.deps import AdminUser, Conn, Context
from trendflow.api.errors import error_responses
from trendflow.api.schemas import (
    PROFILE_ID_PATTERN,
    TokenIn,
    TokenOut,
    TopUpIn,
    UserIn,
    UserOut,
)
from trendflow.billing import ledger
from trendflow.contracts.profile import ModelRef
from trendflow.db.repositories import catalog
from trendflow.db.repositories import profiles as profiles_repo
from trendflow.db.repositories import users as users_repo
from trendflow.errors import ComponentNotFound

router = APIRouter(prefix="/api/admin", tags=["admin"], responses=error_responses(401, 403))
ComponentName = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


def _user_out(u: users_repo.User) -> UserOut:
    return UserOut(**{f: getattr(u, f) for f in UserOut.model_fields})


@router.get("/users", response_model=list[UserOut])
async def list_users(
    _: AdminUser,
    conn: Conn,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[UserOut]:
    return [_user_out(u) for u in await users_repo.list_users(conn, limit=limit, offset=offset)]


@router.post("/users", status_code=201, response_model=UserOut, responses=error_responses(409))
async def create_user(body: UserIn, _: AdminUser, conn: Conn) -> UserOut:
    return _user_out(await users_repo.create_user(
        conn, email=body.email, role=body.role, subscription=body.subscription,
        display_name=body.display_name,
    ))


@router.post("/users/{user_id}/tokens", status_code=201, response_model=TokenOut,
             responses=error_responses(404))
async def create_token(user_id: uuid.UUID, body: TokenIn, _: AdminUser, conn: Conn) -> TokenOut:
    """A new bearer token for the user (shown once)."""
    await users_repo.get_user(conn, user_id=user_id)
    token, record = await users_repo.create_token(
        conn, user_id=user_id, name=body.name, expires_at=body.expires_at
    )
    return TokenOut(token_id=record.token_id, token=token, expires_at=record.expires_at)


@router.delete("/users/{user_id}/tokens/{token_id}", status_code=204,
               responses=error_responses(404))
async def revoke_token(user_id: uuid.UUID, token_id: uuid.UUID, _: AdminUser, conn: Conn) -> None:
    if not await users_repo.revoke_token(conn, token_id=token_id, user_id=user_id):
        from trendflow.errors import NotFound

        raise NotFound(f"no live token {token_id} for user {user_id}")


@router.post("/users/{user_id}/topups", response_model=UserOut, responses=error_responses(404))
async def top_up(user_id: uuid.UUID, body: TopUpIn, admin: AdminUser, conn: Conn) -> UserOut:
    """Add credits (1 RUB = 1 credit); recorded in the user's ledger."""
    async with conn.transaction():
        await users_repo.get_user(conn, user_id=user_id, for_update=True)
        await ledger.top_up(conn, user_id=user_id, amount=body.amount, reason=body.note,
                            actor=admin.email)
    return _user_out(await users_repo.get_user(conn, user_id=user_id))


# Bounds are the columns' (NUMERIC(p, s), INTEGER): larger values are refused as 400, not
# passed on to fail in the database.
Credits = Annotated[Decimal, Field(ge=0, lt=Decimal(10) ** 14, decimal_places=6)]
Seconds = Annotated[Decimal, Field(ge=0, lt=Decimal(10) ** 11, decimal_places=9)]
_MB = 1 << 20  # 1 TiB in MB


class PriceIn(BaseModel):
    unit: str = Field(pattern="^(frame|audio_second|run)$")
    base_cost: Credits
    cpu_cost_per_s: Credits
    gpu_cost_per_s: Credits
    cpu_s_per_unit: Seconds
    gpu_s_per_unit: Seconds
    resolution_factors: dict[str, Any] = Field(default_factory=dict)
    duration_factor_mode: Literal["flat", "linear", "tiered"] = "flat"
    duration_factor_params: dict[str, Any] = Field(default_factory=dict)
    markup: Decimal = Field(default=Decimal(0), ge=0, lt=Decimal(10) ** 4, decimal_places=6)
    cache_price: Credits = Decimal(0)


class RequirementIn(BaseModel):
    engine: str = Field(pattern="^(cpu|gpu)$")
    memory_per_task: int = Field(gt=0, le=_MB)
    gpu_memory_per_task: int = Field(ge=0, le=_MB)
    cpu_cores_per_task: Decimal = Field(gt=0, lt=Decimal(10) ** 4, decimal_places=2)


class PriceOut(PriceIn):
    component_name: str
    source: str = Field(description="'seed', 'admin' or 'calibration'")
    updated_at: datetime | None


class RequirementOut(RequirementIn):
    component_name: str
    source: str
    updated_at: datetime | None


def _plain(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


@router.get("/pricing", response_model=dict[str, PriceOut])
async def get_pricing(_: AdminUser, conn: Conn) -> dict[str, PriceOut]:
    return {k: PriceOut(**_plain(v)) for k, v in (await catalog.get_pricing(conn)).items()}


@router.put("/pricing/{name}", response_model=PriceOut, responses=error_responses(404))
async def put_pricing(name: ComponentName, body: PriceIn, _: AdminUser,
                      conn: Conn) -> PriceOut:
    await catalog.get_resource_requirements(conn, component_names=[name])
    price = catalog.ComponentPrice(component_name=name, source="admin", **body.model_dump())
    return PriceOut(**_plain(await catalog.upsert_pricing(conn, price=price)))


@router.get("/resources", response_model=dict[str, RequirementOut])
async def get_resources(_: AdminUser, conn: Conn) -> dict[str, RequirementOut]:
    return {k: RequirementOut(**_plain(v))
            for k, v in (await catalog.get_resource_requirements(conn)).items()}


@router.put("/resources/{name}", response_model=RequirementOut)
async def put_resources(name: ComponentName, body: RequirementIn, _: AdminUser,
                        conn: Conn) -> RequirementOut:
    req = catalog.ResourceRequirement(component_name=name, source="admin", **body.model_dump())
    return RequirementOut(**_plain(await catalog.upsert_resource_requirement(conn,
                                                                             requirement=req)))


class ModelIn(BaseModel):
    model: str = Field(description="name:version[@sha256]", examples=["face_detector:2"])


PinnedModels = dict[str, list[str]]


class ModelsOut(BaseModel):
    default: dict[str, str] = Field(description="component → model:version served by default")
    profiles: dict[str, PinnedModels] = Field(
        description="profile → component → pinned model refs")


@router.get("/models", response_model=ModelsOut)
async def get_models(_: AdminUser, ctx: Context, conn: Conn) -> ModelsOut:
    """The service default mapping and each profile's pinned models."""
    profiles = await profiles_repo.list_profiles(conn, include_archived=False)
    return ModelsOut(
        default=dict(ctx.settings.triton.models),
        profiles={
            p.profile_id: {c.component_name: [m.ref for m in c.models] for c in p.components
                           if c.models}
            for p in profiles
        },
    )


@router.put("/models/{profile_id}/{name}", response_model=PinnedModels,
            responses=error_responses(404))
async def put_model(
    profile_id: Annotated[str, Path(pattern=PROFILE_ID_PATTERN)],
    name: ComponentName,
    body: ModelIn,
    _: AdminUser,
    conn: Conn,
) -> PinnedModels:
    """Pin ``name`` of ``profile_id`` to a model version (changes its model_signature)."""
    ref = ModelRef.parse(body.model)
    profile = await profiles_repo.get_profile(conn, profile_id=profile_id)
    if name not in {c.component_name for c in profile.components}:
        raise ComponentNotFound(f"profile {profile_id!r} has no component {name!r}",
                                component=name)
    comps = tuple(
        dataclasses.replace(c, models=(profiles_repo.ModelMapping(
            model_name=ref.name, model_version=ref.version, weights_digest=ref.weights_digest),))
        if c.component_name == name else c
        for c in profile.components
    )
    saved = await profiles_repo.save_profile(conn, profile=dataclasses.replace(profile,
                                                                               components=comps))
    return {c.component_name: [m.ref for m in c.models] for c in saved.components if c.models}
