"""``trendflow billing audit``: every credit accounted for.

Per user (the credit model of :mod:`trendflow.billing.ledger`)::

    balance  = topups + refunds − charges − adjustments
    reserved = reserves − charges − releases

and the newest ledger row's ``balance_after``/``reserved_after`` equal the user's row. Per run and
component: ``charged + released <= reserved`` (a hold is never overdrawn), and once the run has
been finished for longer than ``unsettled_grace_s`` nothing is still held (the scheduler settled
it). Each violation is one line of text; an empty list means the books balance.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from trendflow.db.repositories import billing as billing_repo

TERMINAL = ("ok", "error", "cancelled")


async def audit_ledger(conn: asyncpg.Connection, *, unsettled_grace_s: float) -> list[str]:
    """Every violation of the invariants above, one line each (read-only, one snapshot)."""
    problems: list[str] = []
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        for r in await billing_repo.ledger_totals(conn):
            user = r["user_id"]
            want_balance = r["topup"] + r["refund"] - r["charge"] - r["adjustment"]
            if r["balance"] != want_balance:
                problems.append(
                    f"user {user}: balance {r['balance']} but the ledger gives {want_balance} "
                    f"(topups {r['topup']} + refunds {r['refund']} - charges {r['charge']} "
                    f"- adjustments {r['adjustment']})"
                )
            want_reserved = r["reserve"] - r["charge"] - r["release"]
            if r["reserved"] != want_reserved:
                problems.append(
                    f"user {user}: reserved {r['reserved']} but the ledger gives "
                    f"{want_reserved} (reserves {r['reserve']} - charges {r['charge']} "
                    f"- releases {r['release']})"
                )
            if r["last_balance"] is not None and (
                r["last_balance"] != r["balance"] or r["last_reserved"] != r["reserved"]
            ):
                problems.append(
                    f"user {user}: the newest ledger row says balance {r['last_balance']} / "
                    f"reserved {r['last_reserved']}, the user row {r['balance']} / "
                    f"{r['reserved']}"
                )
        grace = timedelta(seconds=unsettled_grace_s)
        for h in await billing_repo.run_hold_totals(conn):
            where = f"run {h['run_id']} component {h['component_name']}"
            if h["component_name"] is None:
                problems.append(f"run {h['run_id']}: ledger rows without a component")
                continue
            if h["charged"] + h["released"] > h["reserved"]:
                problems.append(
                    f"{where}: charged {h['charged']} + released {h['released']} exceed the "
                    f"{h['reserved']} reserved"
                )
            held = h["reserved"] - h["charged"] - h["released"]
            if (
                held > 0
                and h["status"] in TERMINAL
                and h["finished_ago"] is not None
                and h["finished_ago"] > grace
            ):
                problems.append(
                    f"{where}: run ended {h['status']} at {h['finished_at'].isoformat()} but "
                    f"{held} credits are still held (not settled)"
                )
    return problems


__all__ = ["audit_ledger"]
