"""Random sequences of top-ups, run creations and endings keep the books balanced.

A hypothesis state machine drives the real functions on a real PostgreSQL and keeps its own
model of every user's balance and reserved credits; after every step the database must match the
model, ``trendflow billing audit`` must find nothing, and no balance may ever be negative.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from decimal import Decimal

import asyncpg
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from trendflow.billing.audit import audit_ledger
from trendflow.billing.estimate import estimate
from trendflow.billing.ledger import settle_run, top_up
from trendflow.db.pool import connect
from trendflow.errors import PaymentRequired
from trendflow.settings import BillingSettings, Settings

from .helpers import FAST, OPTIONAL, VIDEO, billing_config, finish, new_user, paid_run

NO_LIMITS = Settings(billing=BillingSettings(runs_per_hour_free=10_000,
                                             runs_per_hour_hard_cap=10_000))
CANCEL_DONE = ("metadata_features", "loudness")
_video_numbers = itertools.count(10_000)


def test_ledger_invariants_hold_under_random_operations(seeded_url: str) -> None:
    loop = asyncio.new_event_loop()
    conn: asyncpg.Connection = loop.run_until_complete(connect(seeded_url))

    def run(coro):  # type: ignore[no-untyped-def]
        return loop.run_until_complete(coro)

    class Ledger(RuleBasedStateMachine):
        users = Bundle("users")
        queued = Bundle("queued")
        settled = Bundle("settled")

        def __init__(self) -> None:
            super().__init__()
            self.balance: dict[uuid.UUID, Decimal] = {}
            self.reserved: dict[uuid.UUID, Decimal] = {}
            self.owner: dict[uuid.UUID, uuid.UUID] = {}
            self.prices: dict[str, Decimal] = {}

        @initialize(target=users)
        def make_users(self) -> object:
            ids = [run(new_user(conn)) for _ in range(2)]
            priced = run(estimate(conn, profile=run(billing_config(conn)), video=VIDEO,
                                  settings=NO_LIMITS, with_eta=False))
            self.prices = priced.prices
            for uid in ids:
                self.balance[uid] = self.reserved[uid] = Decimal(0)
            return multiple(*ids)

        @rule(user=users, amount=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(15),
                                             places=2))
        def top_up(self, user: uuid.UUID, amount: Decimal) -> None:
            run(top_up(conn, user_id=user, amount=amount, reason="test", actor="admin@x.io"))
            self.balance[user] += amount

        @rule(target=queued, user=users)
        def create(self, user: uuid.UUID) -> object:
            available = self.balance[user] - self.reserved[user]
            try:
                billed = run(paid_run(conn, user, next(_video_numbers), settings=NO_LIMITS))
            except PaymentRequired as exc:
                assert available < sum(self.prices.values())
                assert Decimal(exc.details["available"]) == available
                return multiple()
            assert billed.estimate is not None
            assert billed.estimate.prices == self.prices
            assert billed.estimate.total <= available
            self.reserved[user] += billed.estimate.total
            self.owner[billed.run.run_id] = user
            return billed.run.run_id

        def _settle(self, run_id: uuid.UUID, status: str, comps: dict[str, str],
                    charged: Decimal) -> uuid.UUID:
            run(finish(conn, run_id, status=status, components=comps))
            result = run(settle_run(conn, run_id=run_id))
            assert result.total_charged == charged
            user = self.owner[run_id]
            self.balance[user] -= charged
            self.reserved[user] -= sum(self.prices.values())
            return run_id

        @rule(target=settled, run_id=consumes(queued))
        def finish_ok(self, run_id: uuid.UUID) -> uuid.UUID:
            return self._settle(run_id, "ok", dict.fromkeys(FAST, "ok"),
                                sum(self.prices.values()))

        @rule(target=settled, run_id=consumes(queued))
        def finish_partial(self, run_id: uuid.UUID) -> uuid.UUID:
            comps = {**dict.fromkeys(FAST, "ok"), OPTIONAL: "error"}
            return self._settle(run_id, "ok", comps,
                                sum(self.prices.values()) - self.prices[OPTIONAL])

        @rule(target=settled, run_id=consumes(queued))
        def fail(self, run_id: uuid.UUID) -> uuid.UUID:
            comps = {**dict.fromkeys(FAST, "ok"), "motion": "error"}
            return self._settle(run_id, "error", comps, Decimal(0))

        @rule(target=settled, run_id=consumes(queued))
        def cancel(self, run_id: uuid.UUID) -> uuid.UUID:
            comps = {**dict.fromkeys(FAST, "pending"), **dict.fromkeys(CANCEL_DONE, "ok")}
            return self._settle(run_id, "cancelled", comps,
                                sum(self.prices[n] for n in CANCEL_DONE))

        @rule(run_id=settled)
        def duplicate_settle(self, run_id: uuid.UUID) -> None:
            assert not run(settle_run(conn, run_id=run_id)).changed

        @invariant()
        def books_balance(self) -> None:
            if not self.balance:
                return
            rows = run(conn.fetch(
                "SELECT user_id, balance, reserved FROM users WHERE user_id = ANY($1::uuid[])",
                list(self.balance),
            ))
            for r in rows:
                assert r["balance"] >= 0 and 0 <= r["reserved"] <= r["balance"]
                assert r["balance"] == self.balance[r["user_id"]]
                assert r["reserved"] == self.reserved[r["user_id"]]
            assert run(audit_ledger(conn, unsettled_grace_s=0)) == []

    try:
        run_state_machine_as_test(
            Ledger,
            settings=settings(max_examples=12, stateful_step_count=15, deadline=None,
                              suppress_health_check=list(HealthCheck)),
        )
    finally:
        run(conn.close())
        loop.close()
