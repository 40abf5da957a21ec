"""``/api/profiles``: built-in and public profiles (read-only) and the user's own (CRUD)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import Response

from trendflow.api.deps import Conn, CurrentUser, SettingsDep
from trendflow.api.schemas import PROFILE_ID_PATTERN, ComponentIn, ErrorOut, ProfileIn, ProfileOut
from trendflow.db.repositories import profiles as repo
from trendflow.db.repositories.users import User
from trendflow.errors import Forbidden
from trendflow.runs.request import check_profile, pin_default_models

router = APIRouter(prefix="/api/profiles", tags=["profiles"])
ProfileId = Annotated[str, Path(pattern=PROFILE_ID_PATTERN)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 403, 404)
}


def _out(p: repo.Profile, user: User) -> ProfileOut:
    return ProfileOut(
        profile_id=p.profile_id,
        name=p.name,
        description=p.description,
        builtin=p.builtin,
        owned=p.user_id == user.user_id,
        cache_ttl_days=p.cache_ttl_days,
        components=[ComponentIn.of(c) for c in p.components],
        sampling=p.sampling,
        render=p.render,
    )


@router.get("", response_model=list[ProfileOut])
async def list_profiles(user: CurrentUser, conn: Conn) -> list[ProfileOut]:
    """Built-in and public profiles plus your own."""
    return [_out(p, user) for p in await repo.list_profiles(conn, user_id=user.user_id)]


@router.get("/{profile_id}", response_model=ProfileOut, responses=_ERRORS)
async def get_profile(profile_id: ProfileId, user: CurrentUser, conn: Conn) -> ProfileOut:
    return _out(await repo.get_profile(conn, profile_id=profile_id, user_id=user.user_id), user)


async def _check_writable(conn: Conn, profile_id: str, user: User) -> None:
    """Only your own profiles change; a built-in or someone else's id is refused."""
    exists, owner = await repo.profile_owner(conn, profile_id=profile_id)
    if exists and owner != user.user_id:
        if owner is None:
            raise Forbidden(f"profile {profile_id!r} is built in and read-only",
                            profile_id=profile_id)
        raise Forbidden(f"profile id {profile_id!r} is taken", profile_id=profile_id)


@router.put("/{profile_id}", response_model=ProfileOut, responses=_ERRORS)
async def put_profile(
    profile_id: ProfileId, body: ProfileIn, user: CurrentUser, conn: Conn, settings: SettingsDep
) -> ProfileOut:
    """Create or replace one of your profiles (``profile_id`` in the path and body agree)."""
    if body.profile_id != profile_id:
        from trendflow.errors import InputError

        raise InputError("profile_id in the path and the body differ", field="profile_id")
    profile = repo.Profile(
        profile_id=profile_id,
        name=body.name,
        user_id=user.user_id,
        description=body.description,
        sampling=body.sampling,
        render=body.render,
        cache_ttl_days=body.cache_ttl_days,
        components=tuple(c.to_profile_component() for c in body.components),
    )
    # Model-backed components pin this deployment's default models unless the body pins one.
    profile = pin_default_models(profile, settings.triton.models)
    # What a run of it would be refused for is refused now (components, params, catalog).
    await check_profile(conn, profile.config())
    await _check_writable(conn, profile_id, user)
    return _out(await repo.save_profile(conn, profile=profile), user)


@router.delete("/{profile_id}", status_code=204, response_class=Response, responses=_ERRORS)
async def delete_profile(profile_id: ProfileId, user: CurrentUser, conn: Conn) -> Response:
    """Archive one of your profiles (runs that used it keep their pinned config)."""
    await _check_writable(conn, profile_id, user)
    await repo.archive_profile(conn, profile_id=profile_id, user_id=user.user_id)
    return Response(status_code=204)
