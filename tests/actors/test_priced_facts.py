"""A run whose fetched video exceeds what it was priced for is refused, not analysed for the
lower price, and holds no credits afterwards (real Ray, real PostgreSQL, the real store)."""

from __future__ import annotations

from tests.actors.conftest import Runtime
from tests.actors.test_run_ending import CREDITS, execute_paid_run
from trendflow.billing.audit import audit_ledger
from trendflow.billing.ledger import get_balance
from trendflow.db.repositories import billing as billing_repo
from trendflow.db.repositories import components as rc_repo
from trendflow.storage.factory import open_store


async def test_a_video_longer_than_priced_is_refused_and_releases_its_reserve(
    runtime: Runtime,
) -> None:
    clip = runtime.clip  # 8 s, priced below as if it lasted 5 s
    assert clip.duration_s > 5.0 + 1.5
    user, run = await execute_paid_run(runtime, open_store(runtime.settings),
                                       priced_duration_s=5.0)
    async with runtime.pool.acquire() as conn:
        assert run.status == "error" and run.error is not None
        assert run.error["code"] == "video_exceeds_quote"
        assert run.error["details"]["priced"]["duration_s"] == 5.0
        assert run.error["details"]["actual"]["duration_s"] > 7.5
        # Not analysed: every component ends aborted with the run, none with a result.
        comps = await rc_repo.list_run_components(conn, run_id=run.run_id)
        assert comps and all(
            c.status == "error" and c.error is not None and c.error["code"] == "run_aborted"
            and c.duration_ms is None for c in comps), comps
        # Nothing charged, nothing held; the books balance.
        balance = await get_balance(conn, user_id=user)
        assert (balance.balance, balance.reserved) == (CREDITS, 0)
        holds = await billing_repo.run_holds(conn, run_id=run.run_id)
        assert holds and all(h.charged == 0 and h.open == 0 for h in holds.values())
        assert await audit_ledger(conn, unsettled_grace_s=0) == []
