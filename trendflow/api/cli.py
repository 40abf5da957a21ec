"""Operator commands for accounts: ``trendflow users create|token|topup``.

They talk to the index database directly (settings from ``TRENDFLOW_*``), so they work before
the API is up — e.g. to make the first admin. ``trendflow serve-env`` prints the ``RAY_SERVE_*``
variables a Ray cluster must be started with to serve the API as the settings ask.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import TypeVar

import asyncpg

from trendflow.billing import ledger
from trendflow.db import connect_and_migrate
from trendflow.db.repositories import users as users_repo
from trendflow.errors import InputError
from trendflow.settings import get_settings

T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    users = subparsers.add_parser("users", help="manage API users and their tokens")
    sub = users.add_subparsers(dest="users_command", required=True)
    create = sub.add_parser("create", help="create a user (prints the id)")
    create.add_argument("email")
    create.add_argument("--role", choices=("user", "admin"), default="user")
    create.add_argument("--subscription", choices=("free", "premium"), default="free")
    create.set_defaults(func=_create)
    token = sub.add_parser("token", help="issue a bearer token for a user (shown once)")
    token.add_argument("email")
    token.add_argument("--name", default="cli")
    token.set_defaults(func=_token)
    topup = sub.add_parser("topup", help="add credits to a user's balance")
    topup.add_argument("email")
    topup.add_argument("amount")
    topup.add_argument("--reason", required=True)
    topup.set_defaults(func=_topup)
    env = subparsers.add_parser(
        "serve-env", help="print the RAY_SERVE_* variables `ray start` needs for the API's "
                          "Serve mode (eval \"$(trendflow serve-env)\")")
    env.set_defaults(func=_serve_env)


def _serve_env(args: argparse.Namespace) -> int:
    from trendflow.api.serving import serve_environment

    for key, value in serve_environment(get_settings().api).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


async def _with_conn(action: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    db = await connect_and_migrate(get_settings())
    try:
        async with db.acquire() as conn:
            return await action(conn)
    finally:
        await db.close()


def _create(args: argparse.Namespace) -> int:
    async def action(conn: asyncpg.Connection) -> users_repo.User:
        return await users_repo.create_user(
            conn, email=args.email, role=args.role, subscription=args.subscription
        )

    user = asyncio.run(_with_conn(action))
    print(user.user_id)
    return 0


def _token(args: argparse.Namespace) -> int:
    async def action(conn: asyncpg.Connection) -> str:
        user = await users_repo.get_user_by_email(conn, email=args.email)
        token, _ = await users_repo.create_token(conn, user_id=user.user_id, name=args.name)
        return token

    print(asyncio.run(_with_conn(action)))
    return 0


def _topup(args: argparse.Namespace) -> int:
    try:
        amount = Decimal(args.amount)
    except InvalidOperation:
        raise InputError(f"amount {args.amount!r} is not a decimal number") from None

    async def action(conn: asyncpg.Connection) -> ledger.Balance:
        user = await users_repo.get_user_by_email(conn, email=args.email)
        async with conn.transaction():
            await ledger.top_up(conn, user_id=user.user_id, amount=amount, reason=args.reason,
                                actor="cli")
        return await ledger.get_balance(conn, user_id=user.user_id)

    bal = asyncio.run(_with_conn(action))
    fmt = ledger.format_credits
    print(
        f"balance {fmt(bal.balance)} reserved {fmt(bal.reserved)} available {fmt(bal.available)}"
    )
    return 0
