"""Users and their API tokens. Tokens are shown once and stored only as sha256 hashes."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

import asyncpg

from trendflow.db.repositories._base import columns, domain_errors, row_to
from trendflow.errors import UserNotFound

Role = Literal["user", "admin"]
Subscription = Literal["free", "premium"]
TOKEN_PREFIX = "tf_"


@dataclass(frozen=True, slots=True)
class User:
    user_id: uuid.UUID
    email: str
    display_name: str | None
    role: str
    subscription: str
    balance: Decimal
    reserved: Decimal
    created_at: datetime
    updated_at: datetime

    @property
    def available(self) -> Decimal:
        """Credits that can still be reserved: balance minus what runs in flight hold."""
        return self.balance - self.reserved


@dataclass(frozen=True, slots=True)
class ApiToken:
    token_id: uuid.UUID
    user_id: uuid.UUID
    token_sha256: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


_USER = columns(User)
_TOKEN = columns(ApiToken)


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_user(
    conn: asyncpg.Connection,
    *,
    email: str,
    role: Role = "user",
    subscription: Subscription = "free",
    balance: Decimal = Decimal(0),
    display_name: str | None = None,
    user_id: uuid.UUID | None = None,
) -> User:
    """Insert a user (email is stored lower-case). Negative balances are refused."""
    with domain_errors("create user"):
        row = await conn.fetchrow(
            f"INSERT INTO users (user_id, email, display_name, role, subscription, balance) "
            f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_USER}",
            user_id or uuid.uuid4(),
            email.strip().lower(),
            display_name,
            role,
            subscription,
            balance,
        )
    return row_to(User, row)


async def get_user(
    conn: asyncpg.Connection, *, user_id: uuid.UUID, for_update: bool = False
) -> User:
    """The user, or :class:`UserNotFound`. ``for_update`` locks the row (billing)."""
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {_USER} FROM users WHERE user_id = $1{lock}", user_id)
    if row is None:
        raise UserNotFound(f"user {user_id} does not exist", user_id=str(user_id))
    return row_to(User, row)


async def get_user_by_email(conn: asyncpg.Connection, *, email: str) -> User:
    row = await conn.fetchrow(f"SELECT {_USER} FROM users WHERE email = $1", email.strip().lower())
    if row is None:
        raise UserNotFound("no user with this email", email_sha256=hash_token(email.lower()))
    return row_to(User, row)


async def list_users(conn: asyncpg.Connection, *, limit: int = 100, offset: int = 0) -> list[User]:
    rows = await conn.fetch(
        f"SELECT {_USER} FROM users ORDER BY created_at, user_id LIMIT $1 OFFSET $2", limit, offset
    )
    return [row_to(User, r) for r in rows]


async def create_token(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID,
    name: str = "",
    expires_at: datetime | None = None,
) -> tuple[str, ApiToken]:
    """A new bearer token: the plaintext (show it once) and the stored record (hash only)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with domain_errors("create token"):
        row = await conn.fetchrow(
            f"INSERT INTO api_tokens (token_id, user_id, token_sha256, name, expires_at) "
            f"VALUES ($1, $2, $3, $4, $5) RETURNING {_TOKEN}",
            uuid.uuid4(),
            user_id,
            hash_token(token),
            name,
            expires_at,
        )
    return token, row_to(ApiToken, row)


TOKEN_USE_RESOLUTION_S = 60
"""``api_tokens.last_used_at`` is refreshed at most this often: clients polling with one token
every few seconds would otherwise all write (and queue on) the same row on every request."""


async def get_user_by_token(conn: asyncpg.Connection, *, token: str) -> User | None:
    """The owner of a live (not revoked, not expired) token, marking it used (to within
    :data:`TOKEN_USE_RESOLUTION_S`); None otherwise. Revocation and expiry apply at once."""
    row = await conn.fetchrow(
        f"WITH t AS (SELECT token_id, user_id, last_used_at FROM api_tokens "
        f"  WHERE token_sha256 = $1 AND revoked_at IS NULL "
        f"  AND (expires_at IS NULL OR expires_at > now())), "
        f"touched AS (UPDATE api_tokens a SET last_used_at = now() FROM t "
        f"  WHERE a.token_id = t.token_id AND (t.last_used_at IS NULL "
        f"  OR t.last_used_at < now() - make_interval(secs => $2))) "
        f"SELECT {', '.join('u.' + c for c in _USER.split(', '))} "
        f"FROM users u JOIN t ON t.user_id = u.user_id",
        hash_token(token),
        float(TOKEN_USE_RESOLUTION_S),
    )
    return None if row is None else row_to(User, row)


async def revoke_token(
    conn: asyncpg.Connection, *, token_id: uuid.UUID, user_id: uuid.UUID
) -> bool:
    """Revoke one of the user's tokens; False if there was no such live token."""
    status = await conn.execute(
        "UPDATE api_tokens SET revoked_at = now() "
        "WHERE token_id = $1 AND user_id = $2 AND revoked_at IS NULL",
        token_id,
        user_id,
    )
    return status.endswith(" 1")


ReportLocale = Literal["ru", "en"]


@dataclass(frozen=True, slots=True)
class UserSettings:
    """A user's account settings (``GET/PATCH /api/me/settings``); defaults and allowed ranges
    are the column defaults and checks of migration 0003.

    - ``cache_ttl_days``: a video this user analysed within this many days is served from the
      cache (0 = never reuse).
    - ``report_sentences_min`` … ``report_sentences_max``: the length of the written analysis
      (20 ≤ min ≤ max ≤ 100; default 50–60).
    - ``report_locale``: its language.
    """

    cache_ttl_days: int
    report_sentences_min: int
    report_sentences_max: int
    report_locale: ReportLocale


_SETTINGS = columns(UserSettings)


async def get_settings(conn: asyncpg.Connection, *, user_id: uuid.UUID) -> UserSettings:
    """The user's account settings, or :class:`UserNotFound`."""
    row = await conn.fetchrow(f"SELECT {_SETTINGS} FROM users WHERE user_id = $1", user_id)
    if row is None:
        raise UserNotFound(f"user {user_id} does not exist", user_id=str(user_id))
    return row_to(UserSettings, row)


async def update_settings(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID,
    cache_ttl_days: int | None = None,
    report_sentences_min: int | None = None,
    report_sentences_max: int | None = None,
    report_locale: ReportLocale | None = None,
) -> UserSettings:
    """Change some settings (None leaves one as it is); out-of-range values and a minimum above
    the maximum are refused by the database's checks (:class:`InputError` naming the check)."""
    with domain_errors("update settings"):
        row = await conn.fetchrow(
            f"UPDATE users SET cache_ttl_days = COALESCE($2, cache_ttl_days), "
            f"report_sentences_min = COALESCE($3, report_sentences_min), "
            f"report_sentences_max = COALESCE($4, report_sentences_max), "
            f"report_locale = COALESCE($5, report_locale), updated_at = now() "
            f"WHERE user_id = $1 RETURNING {_SETTINGS}",
            user_id,
            cache_ttl_days,
            report_sentences_min,
            report_sentences_max,
            report_locale,
        )
    if row is None:
        raise UserNotFound(f"user {user_id} does not exist", user_id=str(user_id))
    return row_to(UserSettings, row)
