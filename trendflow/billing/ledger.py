"""Reserve → settle → release; top-ups; balances and ledger pages.

The credit model (``users``): ``balance`` is what the user owns, ``reserved`` the part of it held
by runs in flight, ``available = balance − reserved``. Every movement is one ``billing_ledger``
row (kinds and their effect: :mod:`trendflow.db.repositories.billing`). At all times, per user::

    balance  = topups + refunds − charges − adjustments
    reserved = reserves − charges − releases

(the issue's ``balance + reserved = top-ups − charges`` in a model where ``balance`` excludes the
held part); ``trendflow billing audit`` checks both, and every run's holds.

**Creating a run** reserves each component's estimated price (one ``reserve`` row per
component, key ``reserve:<run>:<component>``) inside the caller's transaction, under the user's
row lock, after checking ``available >= total``; the CHECK ``reserved <= balance`` backs it up, so
no interleaving of concurrent requests can overdraw.

**Settling** (:func:`settle_run`, once the run is ``ok``/``error``/``cancelled``), per component:

- run ``ok``: a component that ended ``ok`` or ``empty`` (a valid empty result) is charged its
  reserved price; a failed optional or skipped one is released;
- run ``error`` (a required component failed, or the video could not be read): nothing is
  charged, everything is released;
- run ``cancelled``: only components that ended ``ok``/``empty`` before the cancel are charged;
- a reused (cached) run: successful components are charged ``min(reserved, cache_price)``.

Each charge/release row has the key ``charge|release:<run>:<component>`` and the amounts are
computed from what the ledger already holds for the run, under the run's row lock: a repeated,
concurrent or crash-interrupted settlement converges on the same end state and never charges
twice. The charge of a component never exceeds what it reserved.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal

import asyncpg

from trendflow.billing.estimate import Estimate
from trendflow.db.repositories import billing as billing_repo
from trendflow.db.repositories import catalog
from trendflow.db.repositories.billing import LedgerEntry
from trendflow.errors import (
    ConfigError,
    InputError,
    InvalidStatusTransition,
    PaymentRequired,
    RunNotFound,
    UserNotFound,
)

TERMINAL = frozenset({"ok", "error", "cancelled"})
SUCCESS = frozenset({"ok", "empty"})


def reserve_key(run_id: uuid.UUID, component: str) -> str:
    return f"reserve:{run_id}:{component}"


def charge_key(run_id: uuid.UUID, component: str) -> str:
    return f"charge:{run_id}:{component}"


def release_key(run_id: uuid.UUID, component: str) -> str:
    return f"release:{run_id}:{component}"


def format_credits(value: Decimal | str | float) -> str:
    """Credits for people: two decimals, or every digit when a sub-cent amount is held."""
    value = Decimal(str(value))
    cents = value.quantize(Decimal("0.01"))
    return f"{cents:.2f}" if value == cents else str(value.normalize())


async def reserve_for_run(
    conn: asyncpg.Connection, *, user_id: uuid.UUID, run_id: uuid.UUID, estimate: Estimate
) -> list[LedgerEntry]:
    """Hold ``estimate``'s price of every component for ``run_id`` (caller's transaction).

    Raises :class:`PaymentRequired` (402 ``insufficient_credits``) with ``required``,
    ``available`` and ``shortfall`` when the available credits do not cover the total; nothing
    is written then. Repeating it for the same run changes nothing.
    """
    if not conn.is_in_transaction():
        raise ConfigError(
            "reserve_for_run must run inside the transaction that creates the run",
            run_id=str(run_id),
        )
    balance, reserved = await billing_repo.lock_user(conn, user_id=user_id)
    holds = await billing_repo.run_holds(conn, run_id=run_id)
    todo = [c for c in estimate.components if c.component_name not in holds]
    needed = sum((c.price for c in todo), Decimal(0))
    available = balance - reserved
    if needed > available:
        raise PaymentRequired(
            f"this run costs {format_credits(needed)} credits but only "
            f"{format_credits(available)} are available; top up at least "
            f"{format_credits(needed - available)}",
            required=str(needed),
            available=str(available),
            shortfall=str(needed - available),
        )
    entries: list[LedgerEntry] = []
    for line in todo:
        entry = await billing_repo.move(
            conn,
            user_id=user_id,
            kind="reserve",
            amount=line.price,
            run_id=run_id,
            component_name=line.component_name,
            idempotency_key=reserve_key(run_id, line.component_name),
            note="reused result" if line.reused else "",
        )
        if entry is not None:
            entries.append(entry)
    return entries


@dataclass(frozen=True, slots=True)
class Settlement:
    """What one :func:`settle_run` call did (all zero when the run was already settled)."""

    run_id: uuid.UUID
    user_id: uuid.UUID | None
    status: str
    charged: dict[str, Decimal] = field(default_factory=dict)
    released: dict[str, Decimal] = field(default_factory=dict)

    @property
    def total_charged(self) -> Decimal:
        return sum(self.charged.values(), Decimal(0))

    @property
    def total_released(self) -> Decimal:
        return sum(self.released.values(), Decimal(0))

    @property
    def changed(self) -> bool:
        return bool(self.charged or self.released)


async def settle_run(conn: asyncpg.Connection, *, run_id: uuid.UUID) -> Settlement:
    """Charge the finished run's successful components, release the rest (idempotent).

    Runs in one transaction (a savepoint inside the caller's). A run that is not finished yet
    raises :class:`InvalidStatusTransition`; a run that reserved nothing (the system account,
    or created before billing) settles to nothing.
    """
    async with conn.transaction():
        run = await billing_repo.lock_run(conn, run_id=run_id)
        if run is None:
            raise RunNotFound(f"run {run_id} does not exist", run_id=str(run_id))
        status = run["status"]
        if status not in TERMINAL:
            raise InvalidStatusTransition(
                f"run {run_id} is {status}; it can be settled only once it has ended",
                run_id=str(run_id),
                current=status,
            )
        holds = await billing_repo.run_holds(conn, run_id=run_id)
        result = Settlement(run_id=run_id, user_id=run["user_id"], status=status)
        open_holds = {name: h for name, h in holds.items() if h.open > 0}
        if not open_holds:
            return result
        user_id = run["user_id"]
        if user_id is None:
            raise ConfigError(
                f"run {run_id} holds credits but has no user; the ledger rows name the user "
                "and the run's user_id was cleared: settle it by hand",
                run_id=str(run_id),
            )
        await billing_repo.lock_user(conn, user_id=user_id)
        outcomes = await billing_repo.run_component_outcomes(conn, run_id=run_id)
        cache_prices: dict[str, Decimal] = {}
        if run["reused_from_run_id"] is not None and status != "error":
            pricing = await catalog.get_pricing(conn, component_names=list(open_holds))
            cache_prices = {name: p.cache_price for name, p in pricing.items()}
        for name, hold in open_holds.items():
            target = _charge_due(
                status, outcomes.get(name), run["finished_at"], hold.reserved,
                cache_prices.get(name),
            )
            to_charge = min(max(target - hold.charged, Decimal(0)), hold.open)
            to_release = hold.open - to_charge
            if to_charge > 0:
                entry = await billing_repo.move(
                    conn, user_id=user_id, kind="charge", amount=to_charge, run_id=run_id,
                    component_name=name, idempotency_key=charge_key(run_id, name),
                    note=f"run {status}",
                )
                if entry is not None:
                    result.charged[name] = to_charge
            if to_release > 0:
                entry = await billing_repo.move(
                    conn, user_id=user_id, kind="release", amount=to_release, run_id=run_id,
                    component_name=name, idempotency_key=release_key(run_id, name),
                    note=f"run {status}",
                )
                if entry is not None:
                    result.released[name] = to_release
        return result


def _charge_due(
    run_status: str,
    outcome: tuple[str, bool, object] | None,
    run_finished_at: object,
    reserved: Decimal,
    cache_price: Decimal | None,
) -> Decimal:
    """What a component owes in total (the rules in the module docstring)."""
    if run_status == "error" or outcome is None:
        return Decimal(0)
    comp_status, _required, finished_at = outcome
    if comp_status not in SUCCESS:
        return Decimal(0)
    if run_status == "cancelled" and (
        finished_at is None
        or (run_finished_at is not None and finished_at > run_finished_at)  # type: ignore[operator]
    ):
        return Decimal(0)
    if cache_price is not None:
        return min(reserved, cache_price)
    return reserved


@dataclass(frozen=True, slots=True)
class Balance:
    balance: Decimal
    reserved: Decimal

    @property
    def available(self) -> Decimal:
        return self.balance - self.reserved

    def to_dict(self) -> dict[str, str]:
        return {
            "balance": str(self.balance),
            "reserved": str(self.reserved),
            "available": str(self.available),
        }


@dataclass(frozen=True, slots=True)
class LedgerPage:
    entries: list[LedgerEntry]
    next_before: int | None  # pass as ``before_entry_id`` for the next page; None: last page


async def get_balance(conn: asyncpg.Connection, *, user_id: uuid.UUID) -> Balance:
    """The user's balance, reserved and available credits (``/api/me``)."""
    row = await conn.fetchrow("SELECT balance, reserved FROM users WHERE user_id = $1", user_id)
    if row is None:
        raise UserNotFound(f"user {user_id} does not exist", user_id=str(user_id))
    return Balance(balance=row["balance"], reserved=row["reserved"])


async def get_ledger(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID,
    limit: int = 50,
    before_entry_id: int | None = None,
) -> LedgerPage:
    """One page of the user's ledger, newest first (``/api/me``)."""
    if not 1 <= limit <= 1000:
        raise InputError(f"limit must be between 1 and 1000, got {limit}", field="limit")
    entries = await billing_repo.ledger_page(
        conn, user_id=user_id, limit=limit + 1, before_entry_id=before_entry_id
    )
    more = len(entries) > limit
    entries = entries[:limit]
    return LedgerPage(entries=entries, next_before=entries[-1].entry_id if more else None)


def _admin_amount(amount: Decimal, what: str) -> Decimal:
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise InputError(f"a {what} needs a positive decimal amount, got {amount!r}",
                         field="amount")
    if amount != amount.quantize(Decimal("0.000001")):
        raise InputError(f"a {what} amount has at most 6 decimal places, got {amount}",
                         field="amount")
    return amount


def _note(actor: str, reason: str, what: str) -> str:
    if not reason.strip():
        raise InputError(f"a {what} needs a reason", field="reason")
    if not actor.strip():
        raise InputError(f"a {what} needs the acting admin", field="actor")
    return f"{actor.strip()}: {reason.strip()}"


async def top_up(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID,
    amount: Decimal,
    reason: str,
    actor: str,
    idempotency_key: str | None = None,
) -> LedgerEntry | None:
    """Add credits (admin); None when ``idempotency_key`` was already used (nothing changed)."""
    note = _note(actor, reason, "top-up")
    return await billing_repo.move(
        conn, user_id=user_id, kind="topup", amount=_admin_amount(amount, "top-up"),
        idempotency_key=None if idempotency_key is None else f"topup:{idempotency_key}",
        note=note,
    )


async def debit(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID,
    amount: Decimal,
    reason: str,
    actor: str,
) -> LedgerEntry:
    """Remove available credits (admin correction, kind ``adjustment``)."""
    note = _note(actor, reason, "debit")
    amount = _admin_amount(amount, "debit")
    async with conn.transaction():
        balance, reserved = await billing_repo.lock_user(conn, user_id=user_id)
        if amount > balance - reserved:
            raise PaymentRequired(
                f"cannot remove {format_credits(amount)} credits: only "
                f"{format_credits(balance - reserved)} are available (the rest is held by runs "
                "in flight)",
                required=str(amount),
                available=str(balance - reserved),
                shortfall=str(amount - (balance - reserved)),
            )
        entry = await billing_repo.move(
            conn, user_id=user_id, kind="adjustment", amount=amount, note=note
        )
    assert entry is not None
    return entry


async def refund_run(
    conn: asyncpg.Connection, *, run_id: uuid.UUID, reason: str, actor: str
) -> dict[str, Decimal]:
    """Give back everything a settled run was charged (admin); idempotent per component."""
    note = _note(actor, reason, "refund")
    async with conn.transaction():
        run = await billing_repo.lock_run(conn, run_id=run_id)
        if run is None:
            raise RunNotFound(f"run {run_id} does not exist", run_id=str(run_id))
        if run["user_id"] is None:
            raise ConfigError(f"run {run_id} has no user to refund", run_id=str(run_id))
        refunded: dict[str, Decimal] = {}
        for name, hold in (await billing_repo.run_holds(conn, run_id=run_id)).items():
            if hold.charged <= 0:
                continue
            entry = await billing_repo.move(
                conn, user_id=run["user_id"], kind="refund", amount=hold.charged,
                run_id=run_id, component_name=name, idempotency_key=f"refund:{run_id}:{name}",
                note=note,
            )
            if entry is not None:
                refunded[name] = hold.charged
    return refunded


__all__ = [
    "Balance",
    "LedgerPage",
    "Settlement",
    "charge_key",
    "debit",
    "get_balance",
    "get_ledger",
    "refund_run",
    "release_key",
    "reserve_for_run",
    "reserve_key",
    "settle_run",
    "top_up",
]
