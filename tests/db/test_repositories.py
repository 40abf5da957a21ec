"""Repositories and constraints on a real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from tests.db.helpers import fake_hash, make_run
from trendflow.db.repositories import components as comp_repo
from trendflow.db.repositories import runs as runs_repo
from trendflow.db.repositories import users as users_repo
from trendflow.db.repositories import videos as videos_repo
from trendflow.errors import Conflict, InputError, NotFound, RunNotFound, UserNotFound


async def test_negative_balance_is_refused(conn: asyncpg.Connection) -> None:
    with pytest.raises(InputError) as info:
        await users_repo.create_user(conn, email="a@example.com", balance=Decimal("-0.01"))
    assert info.value.details["constraint"] == "users_balance_check"


async def test_constraints_refuse_overdraw_and_negative_balance_in_sql(
    conn: asyncpg.Connection,
) -> None:
    user = await users_repo.create_user(conn, email="B@Example.com", balance=Decimal("10.5"))
    assert user.email == "b@example.com" and user.balance == Decimal("10.5")
    with pytest.raises(asyncpg.CheckViolationError):
        async with conn.transaction():
            await conn.execute(
                "UPDATE users SET balance = balance - 11 WHERE user_id = $1", user.user_id
            )
    # reserving more than the balance is what concurrent requests must never manage
    with pytest.raises(asyncpg.CheckViolationError):
        async with conn.transaction():
            await conn.execute(
                "UPDATE users SET reserved = 10.500001 WHERE user_id = $1", user.user_id
            )


async def test_unknown_statuses_are_refused(conn: asyncpg.Connection) -> None:
    run = await make_run(conn)
    with pytest.raises(asyncpg.CheckViolationError):
        async with conn.transaction():
            await conn.execute("UPDATE runs SET status = 'done' WHERE run_id = $1", run.run_id)
    with pytest.raises(InputError):
        async with conn.transaction():
            await comp_repo.upsert_run_component(
                conn,
                run_id=run.run_id,
                component_name="motion",
                status="finished",  # type: ignore[arg-type]
            )
    with pytest.raises(InputError):  # empty without a reason
        async with conn.transaction():
            await comp_repo.upsert_run_component(
                conn, run_id=run.run_id, component_name="faces", status="empty"
            )
    assert (await runs_repo.get_run(conn, run_id=run.run_id)).status == "queued"


async def test_idempotency_key_returns_the_first_run(conn: asyncpg.Connection) -> None:
    user = await users_repo.create_user(conn, email="c@example.com")
    first = await make_run(conn, user_id=user.user_id, idempotency_key="k1")
    await videos_repo.upsert_video(conn, platform_id="youtube", video_id="dQw4w9WgXcQ")
    again, created = await runs_repo.create_run(
        conn,
        run_id=uuid.uuid4(),
        platform_id="youtube",
        video_id="dQw4w9WgXcQ",
        user_id=user.user_id,
        profile_id="fast",
        config_hash=fake_hash("x"),
        sampling_policy_version="v",
        dataprocessor_version="0.1.0",
        model_signature="m",
        idempotency_key="k1",
    )
    assert not created and again.run_id == first.run_id


async def test_users_see_only_their_runs(conn: asyncpg.Connection) -> None:
    alice = await users_repo.create_user(conn, email="alice@example.com")
    bob = await users_repo.create_user(conn, email="bob@example.com")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    runs = [
        await make_run(conn, user_id=alice.user_id, created_at=t0 + timedelta(minutes=i))
        for i in range(3)
    ]
    await make_run(conn, user_id=bob.user_id)
    listed = await runs_repo.list_runs(conn, user_id=alice.user_id, limit=2)
    assert [r.run_id for r in listed] == [runs[2].run_id, runs[1].run_id]
    rest = await runs_repo.list_runs(
        conn, user_id=alice.user_id, created_before=listed[-1].created_at
    )
    assert [r.run_id for r in rest] == [runs[0].run_id]
    with pytest.raises(RunNotFound):
        await runs_repo.get_run(conn, run_id=runs[0].run_id, user_id=bob.user_id)


async def test_tokens_are_stored_hashed_and_revocable(conn: asyncpg.Connection) -> None:
    user = await users_repo.create_user(conn, email="t@example.com", role="admin")
    token, record = await users_repo.create_token(conn, user_id=user.user_id, name="cli")
    stored = await conn.fetchval("SELECT token_sha256 FROM api_tokens")
    assert token not in stored and stored == users_repo.hash_token(token) == record.token_sha256
    found = await users_repo.get_user_by_token(conn, token=token)
    assert found is not None and found.user_id == user.user_id and found.role == "admin"
    assert await users_repo.get_user_by_token(conn, token=token + "x") is None
    assert await users_repo.revoke_token(conn, token_id=record.token_id, user_id=user.user_id)
    assert await users_repo.get_user_by_token(conn, token=token) is None
    with pytest.raises(UserNotFound):
        await users_repo.get_user(conn, user_id=uuid.uuid4())
    with pytest.raises(Conflict):
        await users_repo.create_user(conn, email="T@example.com")


async def test_token_use_is_recorded_at_most_once_a_minute(conn: asyncpg.Connection) -> None:
    """Pollers sharing a token do not rewrite its row on every request; a stale mark moves."""
    user = await users_repo.create_user(conn, email="p@example.com")
    token, record = await users_repo.create_token(conn, user_id=user.user_id, name="poller")
    used = "SELECT last_used_at FROM api_tokens WHERE token_id = $1"
    assert await conn.fetchval(used, record.token_id) is None
    assert await users_repo.get_user_by_token(conn, token=token) is not None
    first = await conn.fetchval(used, record.token_id)
    assert first is not None
    version = "SELECT ctid::text FROM api_tokens WHERE token_id = $1"  # moves on every write
    before = await conn.fetchval(version, record.token_id)
    for _ in range(3):
        assert await users_repo.get_user_by_token(conn, token=token) is not None
    assert await conn.fetchval(version, record.token_id) == before  # no write at all
    await conn.execute("UPDATE api_tokens SET last_used_at = now() - interval '2 minutes' "
                       "WHERE token_id = $1", record.token_id)
    assert await users_repo.get_user_by_token(conn, token=token) is not None
    assert await conn.fetchval(used, record.token_id) > first - timedelta(seconds=1)


async def test_cache_lookup_and_video_deletion(conn: asyncpg.Connection) -> None:
    run = await make_run(conn)
    await runs_repo.claim_next_runs(conn, limit=1, worker_id="w")
    await comp_repo.upsert_run_component(
        conn, run_id=run.run_id, component_name="motion", status="ok", schema_version=1
    )
    await comp_repo.add_artifact(
        conn,
        key=f"youtube/{run.video_id}/{run.run_id}/motion/motion.npz",
        run_id=run.run_id,
        component_name="motion",
        size_bytes=10,
        sha256=fake_hash("a"),
    )
    await runs_repo.set_run_status(conn, run_id=run.run_id, status="ok")
    since = datetime.now(UTC) - timedelta(days=3)
    hit = await runs_repo.find_cached_run(
        conn,
        video_id=run.video_id,
        config_hash=run.config_hash,
        model_signature=run.model_signature,
        finished_after=since,
    )
    assert hit is not None and hit.run_id == run.run_id
    miss = await runs_repo.find_cached_run(
        conn,
        video_id=run.video_id,
        config_hash=run.config_hash,
        model_signature="other",
        finished_after=since,
    )
    assert miss is None
    assert await videos_repo.delete_video(conn, platform_id="youtube", video_id=run.video_id)
    assert await conn.fetchval("SELECT count(*) FROM artifacts") == 0
    with pytest.raises(NotFound):
        await videos_repo.get_video(conn, platform_id="youtube", video_id=run.video_id)
