"""Bearer-token authentication and roles.

Tokens are random strings shown once (``trendflow users token``, ``POST /api/admin/users/{id}/
tokens``) and stored as sha256 hashes (:mod:`trendflow.db.repositories.users`); a revoked or
expired token is refused like an unknown one. Roles: ``user`` reaches only its own runs,
uploads, profiles and ledger; ``admin`` also reaches the admin routes.
"""

from __future__ import annotations

from trendflow.db import Database
from trendflow.db.repositories import users as users_repo
from trendflow.errors import AuthError, Forbidden


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; :class:`AuthError` otherwise."""
    if not authorization:
        raise AuthError("missing bearer token: send 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError("malformed Authorization header: expected 'Bearer <token>'")
    if len(token) > 256 or not token.isascii():
        raise AuthError("invalid bearer token")
    return token


async def authenticate(db: Database, authorization: str | None) -> users_repo.User:
    """The user owning the header's live token."""
    token = bearer_token(authorization)
    async with db.acquire() as conn:
        user = await users_repo.get_user_by_token(conn, token=token)
    if user is None:
        raise AuthError("invalid, revoked or expired bearer token")
    return user


def require_admin(user: users_repo.User) -> users_repo.User:
    """``user`` if they are an admin; :class:`Forbidden` otherwise."""
    if user.role != "admin":
        raise Forbidden("this route is for administrators", role=user.role)
    return user
