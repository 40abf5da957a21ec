"""FastAPI dependencies as ``Annotated`` aliases: what a route needs, declared in its signature."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import asyncpg
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from trendflow.api.auth import authenticate, require_admin
from trendflow.api.context import ApiContext
from trendflow.db.repositories.users import User
from trendflow.settings import Settings
from trendflow.storage.base import ResultStore


def _context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Context = Annotated[ApiContext, Depends(_context)]


def _settings(ctx: Context) -> Settings:
    return ctx.settings


def _store(ctx: Context) -> ResultStore:
    return ctx.store


async def _conn(ctx: Context) -> AsyncIterator[asyncpg.Connection]:
    async with ctx.db.acquire() as conn:
        yield conn


# Declares the scheme in OpenAPI (Swagger's "Authorize"); the header itself is checked by
# :func:`authenticate`, which tells a missing, a malformed and an unknown token apart.
bearer_scheme = HTTPBearer(
    auto_error=False, scheme_name="bearer",
    description="`trendflow users token <email>` prints one; send `Authorization: Bearer <token>`",
)


async def _user(
    ctx: Context,
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)] = None,
) -> User:
    return await authenticate(ctx.db, request.headers.get("authorization"))


async def _admin(user: Annotated[User, Depends(_user)]) -> User:
    return require_admin(user)


SettingsDep = Annotated[Settings, Depends(_settings)]
StoreDep = Annotated[ResultStore, Depends(_store)]
Conn = Annotated[asyncpg.Connection, Depends(_conn)]
CurrentUser = Annotated[User, Depends(_user)]
AdminUser = Annotated[User, Depends(_admin)]
