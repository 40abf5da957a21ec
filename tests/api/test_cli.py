"""``trendflow users create|token|topup`` against the real PostgreSQL; the token works."""

from __future__ import annotations

import pytest

from tests.fixtures.api import ApiHarness
from trendflow.cli import main


async def test_users_cli_token_authenticates(
    api: ApiHarness, db_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    monkeypatch.setenv("TRENDFLOW_DATABASE_URL", db_url)
    from trendflow.settings import get_settings

    get_settings.cache_clear()
    run = asyncio.to_thread
    assert await run(main, ["users", "create", "dave@example.com", "--role", "admin"]) == 0
    assert await run(main, ["users", "token", "dave@example.com"]) == 0
    assert await run(main, ["users", "topup", "dave@example.com", "7.25", "--reason", "t"]) == 0
    out = capsys.readouterr().out.splitlines()
    token = out[1].strip()
    assert "available 7.25" in out[2]
    me = await api.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["role"] == "admin"
    assert await run(main, ["users", "token", "nobody@example.com"]) == 2
