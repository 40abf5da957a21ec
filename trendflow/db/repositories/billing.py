"""Credits: ledger movements, per-run holds, ledger pages, the pricing audit trail.

A movement changes ``users.balance`` / ``users.reserved`` and appends its ``billing_ledger`` row
in ONE statement, so the ledger and the user row can never disagree. How each kind moves credits
(``amount`` is always >= 0):

=========== =========== ============ =================================================
kind        balance     reserved     meaning
=========== =========== ============ =================================================
topup       + amount                 credits bought / granted (admin, with a reason)
reserve                 + amount     held for one component of a run being created
charge      - amount    - amount     a held amount paid for a finished component
release                 - amount     a held amount given back (unused, failed, refunded)
refund      + amount                 an earlier charge returned (admin)
adjustment  - amount                 credits removed (admin correction, with a reason)
=========== =========== ============ =================================================

Movements with an ``idempotency_key`` happen at most once: a repeat finds the existing row and
changes nothing. The CHECKs of ``users`` (``balance >= 0``, ``reserved >= 0``,
``reserved <= balance``) are the last line of defence against overdrawing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import asyncpg

from trendflow.db.repositories._base import columns, domain_errors, row_to
from trendflow.errors import InputError, UserNotFound

LedgerKind = Literal["topup", "reserve", "charge", "release", "refund", "adjustment"]

# (sign on balance, sign on reserved) per kind.
MOVES: Mapping[str, tuple[int, int]] = {
    "topup": (1, 0),
    "reserve": (0, 1),
    "charge": (-1, -1),
    "release": (0, -1),
    "refund": (1, 0),
    "adjustment": (-1, 0),
}


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    entry_id: int
    user_id: uuid.UUID
    run_id: uuid.UUID | None
    component_name: str | None
    kind: str
    amount: Decimal
    balance_after: Decimal
    reserved_after: Decimal
    idempotency_key: str | None
    note: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    audit_id: int
    action: str
    component_name: str
    actor: str
    reason: str
    before: dict[str, Any] | None
    after: dict[str, Any]
    details: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Hold:
    """What one component of a run has reserved, been charged and been released."""

    component_name: str
    reserved: Decimal
    charged: Decimal
    released: Decimal

    @property
    def open(self) -> Decimal:
        """Credits still held for this component."""
        return self.reserved - self.charged - self.released


_ENTRY = columns(LedgerEntry)
_AUDIT = columns(AuditEntry)


async def move(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID,
    kind: LedgerKind,
    amount: Decimal,
    run_id: uuid.UUID | None = None,
    component_name: str | None = None,
    idempotency_key: str | None = None,
    note: str = "",
) -> LedgerEntry | None:
    """Apply one movement and append its ledger row; the row, or None if the key was used.

    A movement the CHECKs refuse (more than the balance or the hold) raises
    :class:`InputError` with the constraint's name; callers that can explain the refusal
    better (insufficient credits) check first under the user's row lock.
    """
    if amount < 0:
        raise InputError(f"a {kind} amount must be >= 0, got {amount}", amount=str(amount))
    d_balance, d_reserved = MOVES[kind]
    with domain_errors(f"{kind} of {amount} credits for user {user_id}"):
        row = await conn.fetchrow(
            f"""
            WITH u AS (
                UPDATE users SET balance = balance + $3::int * $2::numeric,
                                 reserved = reserved + $4::int * $2::numeric, updated_at = now()
                WHERE user_id = $1 AND ($7::text IS NULL OR NOT EXISTS (
                    SELECT 1 FROM billing_ledger WHERE idempotency_key = $7))
                RETURNING balance, reserved
            )
            INSERT INTO billing_ledger (user_id, run_id, component_name, kind, amount,
                                        balance_after, reserved_after, idempotency_key, note)
            SELECT $1, $5, $6, $8, $2, u.balance, u.reserved, $7, $9 FROM u
            RETURNING {_ENTRY}
            """,
            user_id,
            amount,
            d_balance,
            d_reserved,
            run_id,
            component_name,
            idempotency_key,
            kind,
            note,
        )
    if row is not None:
        return row_to(LedgerEntry, row)
    exists = await conn.fetchval("SELECT 1 FROM users WHERE user_id = $1", user_id)
    if exists is None:
        raise UserNotFound(f"user {user_id} does not exist", user_id=str(user_id))
    return None  # the idempotency key was used: this movement already happened


async def lock_user(conn: asyncpg.Connection, *, user_id: uuid.UUID) -> tuple[Decimal, Decimal]:
    """Lock the user's row for this transaction; ``(balance, reserved)``.

    Every run creation of one user takes this lock first, which serialises their rate-limit
    count and credit reservation.
    """
    row = await conn.fetchrow(
        "SELECT balance, reserved FROM users WHERE user_id = $1 FOR UPDATE", user_id
    )
    if row is None:
        raise UserNotFound(f"user {user_id} does not exist", user_id=str(user_id))
    return row["balance"], row["reserved"]


async def lock_run(conn: asyncpg.Connection, *, run_id: uuid.UUID) -> asyncpg.Record | None:
    """Lock the run's row; its user, status, reuse and finish time (None if no such run)."""
    return await conn.fetchrow(
        "SELECT run_id, user_id, status, reused_from_run_id, finished_at FROM runs "
        "WHERE run_id = $1 FOR UPDATE",
        run_id,
    )


async def run_holds(conn: asyncpg.Connection, *, run_id: uuid.UUID) -> dict[str, Hold]:
    """Per component of the run: reserved, charged and released totals from the ledger."""
    rows = await conn.fetch(
        """
        SELECT component_name,
               COALESCE(sum(amount) FILTER (WHERE kind = 'reserve'), 0) AS reserved,
               COALESCE(sum(amount) FILTER (WHERE kind = 'charge'), 0) AS charged,
               COALESCE(sum(amount) FILTER (WHERE kind = 'release'), 0) AS released
        FROM billing_ledger WHERE run_id = $1 AND component_name IS NOT NULL
        GROUP BY component_name ORDER BY component_name
        """,
        run_id,
    )
    return {r["component_name"]: Hold(**dict(r)) for r in rows}


async def run_component_outcomes(
    conn: asyncpg.Connection, *, run_id: uuid.UUID
) -> dict[str, tuple[str, bool, datetime | None]]:
    """``component → (status, required, finished_at)`` from ``run_components``."""
    rows = await conn.fetch(
        "SELECT component_name, status, required, finished_at FROM run_components "
        "WHERE run_id = $1",
        run_id,
    )
    return {r["component_name"]: (r["status"], r["required"], r["finished_at"]) for r in rows}


async def ledger_page(
    conn: asyncpg.Connection, *, user_id: uuid.UUID, limit: int, before_entry_id: int | None
) -> list[LedgerEntry]:
    """The user's ledger, newest first; the next page starts below the last ``entry_id``."""
    rows = await conn.fetch(
        f"SELECT {_ENTRY} FROM billing_ledger WHERE user_id = $1 "
        f"AND ($2::bigint IS NULL OR entry_id < $2) ORDER BY entry_id DESC LIMIT $3",
        user_id,
        before_entry_id,
        limit,
    )
    return [row_to(LedgerEntry, r) for r in rows]


async def runs_since(
    conn: asyncpg.Connection, *, user_id: uuid.UUID, window_s: float
) -> list[datetime]:
    """Creation times of the user's runs in the last ``window_s`` seconds, oldest first.

    The window ends at the statement's wall clock (``clock_timestamp()``), not at the start
    of the transaction, because the caller may have waited for the user's lock.
    """
    rows = await conn.fetch(
        "SELECT created_at FROM runs WHERE user_id = $1 "
        "AND created_at > clock_timestamp() - make_interval(secs => $2) ORDER BY created_at",
        user_id,
        window_s,
    )
    return [r["created_at"] for r in rows]


async def run_by_idempotency_key(
    conn: asyncpg.Connection, *, user_id: uuid.UUID, idempotency_key: str
) -> uuid.UUID | None:
    """The user's run created with ``idempotency_key``, if any."""
    value: uuid.UUID | None = await conn.fetchval(
        "SELECT run_id FROM runs WHERE user_id = $1 AND idempotency_key = $2",
        user_id,
        idempotency_key,
    )
    return value


async def db_now(conn: asyncpg.Connection) -> datetime:
    """The database's wall clock (rate-limit windows are measured on it)."""
    value: datetime = await conn.fetchval("SELECT clock_timestamp()")
    return value


async def add_audit(
    conn: asyncpg.Connection,
    *,
    action: Literal["pricing_update", "calibration"],
    component_name: str,
    actor: str,
    reason: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any],
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    with domain_errors(f"audit {action} of {component_name}"):
        row = await conn.fetchrow(
            f"INSERT INTO billing_audit (action, component_name, actor, reason, before, after, "
            f"details) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_AUDIT}",
            action,
            component_name,
            actor,
            reason,
            None if before is None else dict(before),
            dict(after),
            dict(details or {}),
        )
    return row_to(AuditEntry, row)


async def list_audit(
    conn: asyncpg.Connection, *, component_name: str | None = None, limit: int = 100
) -> list[AuditEntry]:
    rows = await conn.fetch(
        f"SELECT {_AUDIT} FROM billing_audit WHERE $1::text IS NULL OR component_name = $1 "
        f"ORDER BY audit_id DESC LIMIT $2",
        component_name,
        limit,
    )
    return [row_to(AuditEntry, r) for r in rows]


async def ledger_totals(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Per user: the stored balance/reserved and the sums of each ledger kind."""
    return await conn.fetch(
        """
        SELECT u.user_id, u.balance, u.reserved,
               COALESCE(sum(l.amount) FILTER (WHERE l.kind = 'topup'), 0) AS topup,
               COALESCE(sum(l.amount) FILTER (WHERE l.kind = 'reserve'), 0) AS reserve,
               COALESCE(sum(l.amount) FILTER (WHERE l.kind = 'charge'), 0) AS charge,
               COALESCE(sum(l.amount) FILTER (WHERE l.kind = 'release'), 0) AS release,
               COALESCE(sum(l.amount) FILTER (WHERE l.kind = 'refund'), 0) AS refund,
               COALESCE(sum(l.amount) FILTER (WHERE l.kind = 'adjustment'), 0) AS adjustment,
               (SELECT b.balance_after FROM billing_ledger b
                 WHERE b.user_id = u.user_id ORDER BY b.entry_id DESC LIMIT 1) AS last_balance,
               (SELECT b.reserved_after FROM billing_ledger b
                 WHERE b.user_id = u.user_id ORDER BY b.entry_id DESC LIMIT 1) AS last_reserved
        FROM users u LEFT JOIN billing_ledger l ON l.user_id = u.user_id
        GROUP BY u.user_id ORDER BY u.user_id
        """
    )


async def run_hold_totals(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Per (run, component) with ledger rows: the totals, the run's status and finish time."""
    return await conn.fetch(
        """
        SELECT l.user_id, l.run_id, l.component_name, r.status, r.finished_at,
               (clock_timestamp() - r.finished_at) AS finished_ago,
               COALESCE(sum(l.amount) FILTER (WHERE l.kind = 'reserve'), 0) AS reserved,
               COALESCE(sum(l.amount) FILTER (WHERE l.kind = 'charge'), 0) AS charged,
               COALESCE(sum(l.amount) FILTER (WHERE l.kind = 'release'), 0) AS released
        FROM billing_ledger l LEFT JOIN runs r ON r.run_id = l.run_id
        WHERE l.run_id IS NOT NULL
        GROUP BY l.user_id, l.run_id, l.component_name, r.status, r.finished_at
        ORDER BY l.user_id, l.run_id, l.component_name
        """
    )


__all__ = [
    "MOVES",
    "AuditEntry",
    "Hold",
    "LedgerEntry",
    "LedgerKind",
    "add_audit",
    "db_now",
    "ledger_page",
    "ledger_totals",
    "list_audit",
    "lock_run",
    "lock_user",
    "move",
    "run_component_outcomes",
    "run_hold_totals",
    "run_by_idempotency_key",
    "run_holds",
    "runs_since",
]
