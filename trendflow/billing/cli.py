"""``trendflow billing …``: audit the books, top up, estimate, show prices.

- ``billing audit``: check the ledger invariants (docs/billing.md); one line per problem, exit 1
  if there is any;
- ``billing topup --email E --amount N --reason R [--actor A]``: add credits (ledger ``topup``);
- ``billing balance --email E``: balance, reserved and available credits;
- ``billing estimate --profile P --duration S --width W --height H``: price a run;
- ``billing prices``: the current ``component_pricing`` rows.

Each prints lines for people; with ``--json``, one JSON document on stdout for scripts (credits
as decimal strings): ``{ok, problems}`` for the audit, ``{balance, reserved, available}`` for a
top-up or balance, ``POST /api/estimate``'s ``lines`` shape for an estimate, the pricing rows by
component for the prices. The exit status is the same either way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from trendflow.errors import InputError
from trendflow.settings import Settings, get_settings


def _print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2))


def _run(body: Callable[[argparse.Namespace, Settings, Any], Awaitable[int]]) -> Any:
    def func(args: argparse.Namespace) -> int:
        settings = get_settings()

        async def main() -> int:
            from trendflow.db.pool import open_database

            db = await open_database(settings, migrate=False)
            try:
                async with db.acquire() as conn:
                    return await body(args, settings, conn)
            finally:
                await db.close()

        return asyncio.run(main())

    return func


async def _audit(args: argparse.Namespace, settings: Settings, conn: Any) -> int:
    from trendflow.billing.audit import audit_ledger

    problems = await audit_ledger(conn, unsettled_grace_s=settings.billing.unsettled_grace_s)
    if args.json:
        _print_json({"ok": not problems, "problems": problems})
        return 1 if problems else 0
    for line in problems:
        print(line)
    if not problems:
        print("billing audit: every balance, hold and ledger row agrees")
    return 1 if problems else 0


def _amount(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise InputError(f"--amount {text!r} is not a decimal number", field="amount") from exc


async def _print_balance(args: argparse.Namespace, conn: Any, user_id: Any,
                         said: str) -> None:
    from trendflow.billing.ledger import format_credits, get_balance

    bal = await get_balance(conn, user_id=user_id)
    if args.json:
        _print_json(bal.to_dict())
        return
    print(f"{said}: balance {format_credits(bal.balance)}, reserved "
          f"{format_credits(bal.reserved)}, available {format_credits(bal.available)} credits")


async def _topup(args: argparse.Namespace, settings: Settings, conn: Any) -> int:
    from trendflow.billing.ledger import format_credits, top_up
    from trendflow.db.repositories.users import get_user_by_email

    user = await get_user_by_email(conn, email=args.email)
    amount = _amount(args.amount)
    await top_up(conn, user_id=user.user_id, amount=amount, reason=args.reason,
                 actor=args.actor)
    await _print_balance(args, conn, user.user_id,
                         f"{args.email} topped up by {format_credits(amount)}")
    return 0


async def _balance(args: argparse.Namespace, settings: Settings, conn: Any) -> int:
    from trendflow.db.repositories.users import get_user_by_email

    user = await get_user_by_email(conn, email=args.email)
    await _print_balance(args, conn, user.user_id, args.email)
    return 0


async def _estimate(args: argparse.Namespace, settings: Settings, conn: Any) -> int:
    from trendflow.billing.estimate import estimate
    from trendflow.billing.pricing import VideoParams
    from trendflow.db.repositories.profiles import get_profile

    video = VideoParams(duration_s=args.duration, width=args.width, height=args.height)
    profile = await get_profile(conn, profile_id=args.profile, user_id=None)
    est = await estimate(conn, profile=profile.config(), video=video, settings=settings)
    if args.json:
        _print_json(est.to_dict())
        return 0
    from trendflow.billing.ledger import format_credits

    print(f"{args.profile} for {video.duration_s:g} s at {video.width}x{video.height}: "
          f"{format_credits(est.total)} credits")
    width = max(len(c.component_name) for c in est.components)
    for c in est.components:
        print(f"  {c.component_name:<{width}}  {format_credits(c.price):>8}")
    return 0


async def _prices(args: argparse.Namespace, settings: Settings, conn: Any) -> int:
    from trendflow.billing.pricing import pricing_json
    from trendflow.db.repositories.catalog import get_pricing

    prices = await get_pricing(conn)
    if args.json:
        _print_json({name: pricing_json(p) for name, p in sorted(prices.items())})
        return 0
    width = max((len(name) for name in prices), default=9)
    print(f"{'component':<{width}}  {'unit':<8}  {'base':>6}  {'CPU/s':>6}  {'GPU/s':>6}  "
          f"{'markup':>6}  {'cached':>6}")
    for name, p in sorted(prices.items()):
        print(f"{name:<{width}}  {p.unit:<8}  {p.base_cost:>6}  {p.cpu_cost_per_s:>6}  "
              f"{p.gpu_cost_per_s:>6}  {p.markup:>6}  {p.cache_price:>6}")
    return 0


def _json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true",
                   help="one JSON document on stdout instead of lines (for scripts)")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    billing = subparsers.add_parser("billing", help="credits: audit, top-ups, estimates, prices")
    sub = billing.add_subparsers(dest="billing_command", required=True, metavar="ACTION")

    p = sub.add_parser("audit", help="check the ledger invariants (exit 1 on any problem)")
    _json_option(p)
    p.set_defaults(func=_run(_audit))

    p = sub.add_parser("topup", help="add credits to a user (with a reason)")
    p.add_argument("--email", required=True)
    p.add_argument("--amount", required=True, help="credits, a decimal (1 credit = 1 RUB)")
    p.add_argument("--reason", required=True)
    p.add_argument("--actor", default="cli", help="who is topping up (recorded in the ledger)")
    _json_option(p)
    p.set_defaults(func=_run(_topup))

    p = sub.add_parser("balance", help="a user's balance, reserved and available credits")
    p.add_argument("--email", required=True)
    _json_option(p)
    p.set_defaults(func=_run(_balance))

    p = sub.add_parser("estimate", help="price a profile for a video")
    p.add_argument("--profile", required=True)
    p.add_argument("--duration", type=float, required=True, help="seconds")
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--height", type=int, required=True)
    _json_option(p)
    p.set_defaults(func=_run(_estimate))

    p = sub.add_parser("prices", help="the component pricing table")
    _json_option(p)
    p.set_defaults(func=_run(_prices))
