"""Uploads are rate limited per user: over real HTTP (uvicorn on loopback) the request past the
limit is answered ``429 rate_limited`` with ``Retry-After``, before its body is read, and other
users are not affected."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from tests.fixtures.api import Account, api_settings, make_account
from trendflow import stack
from trendflow.api.app import create_app, open_context
from trendflow.api.context import ApiContext
from trendflow.api.throttle import SlidingWindowLimiter
from trendflow.db import Database
from trendflow.errors import RateLimited


@pytest.fixture
async def served(db: Database, db_url: str, tmp_path: Path
                 ) -> AsyncIterator[tuple[str, Account, Account]]:
    settings = api_settings(tmp_path, db_url, uploads_per_window=2, request_rate_window_s=60)

    async def factory() -> ApiContext:  # on the server's own loop, as in production
        return await open_context(settings)

    port = stack._free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(factory, webhooks=False), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        yield (f"http://127.0.0.1:{port}", await make_account(db, "a@example.com"),
               await make_account(db, "b@example.com"))
    finally:
        server.should_exit = True
        thread.join(timeout=30)


async def test_uploads_past_the_limit_get_429_with_retry_after(
    served: tuple[str, Account, Account], tmp_path: Path
) -> None:
    url, alice, bob = served
    text = tmp_path / "x.txt"
    text.write_text("not a video\n")
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        answers = [await http.post("/api/uploads", content=text.read_bytes(),
                                   headers={**alice.headers, "X-Filename": "x.txt"})
                   for _ in range(3)]
        assert [r.status_code for r in answers] == [415, 415, 429]  # refused ones count too
        limited = answers[2]
        assert limited.json()["code"] == "rate_limited"
        assert 55 <= int(limited.headers["retry-after"]) <= 60
        other = await http.post("/api/uploads", content=text.read_bytes(),
                                headers={**bob.headers, "X-Filename": "x.txt"})
        assert other.status_code == 415  # bob has his own allowance


def test_the_window_slides() -> None:
    now = [0.0]
    limiter = SlidingWindowLimiter(what="estimates", limit=2, window_s=10, clock=lambda: now[0])
    user = uuid.uuid4()
    limiter.check(user)
    now[0] = 4.0
    limiter.check(user)
    now[0] = 9.0
    with pytest.raises(RateLimited) as err:
        limiter.check(user)
    assert err.value.details["retry_after_s"] == 1  # the first leaves the window at 10 s
    now[0] = 10.0
    limiter.check(user)
