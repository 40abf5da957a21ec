"""The API under real Ray Serve (loopback): resources open inside the replica, /docs works,
and load beyond the replica's limits is shed with ``503 overloaded`` (JSON, Retry-After)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.api import api_settings, make_account
from trendflow import stack
from trendflow.api.app import BuildArgs, build_app
from trendflow.db import Database
from trendflow.db.seed.seed import apply_seed
from trendflow.errors import ConfigError


@pytest.fixture
def served(ray_cluster: dict[str, object], db_url: str, tmp_path: Path) -> Iterator[str]:
    """The app on Serve with one request at a time and no waiting room."""
    from ray import serve

    port = stack._free_port()
    # This test's Ray runs Serve as Ray's defaults have it: through the proxy actor.
    settings = api_settings(tmp_path, db_url, replica_cpus=0.0, overload_answer_slots=8,
                            serve_direct_ingress=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run(build_app(BuildArgs(max_ongoing_requests=1, max_queued_requests=0),
                            settings=settings), name="trendflow-test", route_prefix="/")
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()


@pytest.fixture
async def token(db: Database) -> AsyncIterator[str]:
    async with db.acquire() as conn:
        await apply_seed(conn)
    yield (await make_account(db, "serve@example.com")).token


async def _slow_body(seconds: float) -> AsyncIterator[bytes]:
    for _ in range(int(seconds / 0.1)):
        await asyncio.sleep(0.1)
        yield b"\0" * 1024


async def test_serve_runs_the_app_and_sheds_load(served: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=served, timeout=30) as http:
        assert (await http.get("/docs")).status_code == 200
        me = await http.get("/api/me", headers=headers)
        assert me.status_code == 200, me.text  # the replica opened its own database pool

        # One upload streams its body for 3 s and holds the only slot meanwhile.
        slow = asyncio.create_task(http.post(
            "/api/uploads", content=_slow_body(3.0), headers={**headers, "X-Filename": "a.mp4"}))
        await asyncio.sleep(1.0)
        burst: list[Any] = await asyncio.gather(
            *(http.get("/api/me", headers=headers) for _ in range(4)))
        assert {r.status_code for r in burst} == {503}
        body = burst[0].json()
        assert body["code"] == "overloaded" and burst[0].headers["retry-after"] == "1"
        live = await http.get("/health/live")  # probes are never shed
        assert live.status_code == 200

        done = await slow
        assert done.status_code == 415  # zero bytes are not a video: it was processed
        after = await http.get("/api/me", headers=headers)
        assert after.status_code == 200


def test_build_app_refuses_a_serve_mode_other_than_the_settings(tmp_path: Path) -> None:
    """Serve fixes its mode when its processes start; a mismatch must not deploy silently."""
    settings = api_settings(tmp_path, "postgresql://unused", serve_direct_ingress=True)
    with pytest.raises(ConfigError, match="trendflow serve-env"):
        build_app(settings=settings)  # this process's Serve runs without direct ingress
