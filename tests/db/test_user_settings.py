"""Account settings on a real PostgreSQL: defaults, partial updates, and what the checks refuse."""

from __future__ import annotations

import asyncpg
import pytest

from trendflow.db.repositories import users as users_repo
from trendflow.errors import InputError


async def test_a_new_user_has_the_owners_defaults(conn: asyncpg.Connection) -> None:
    user = await users_repo.create_user(conn, email="s@example.com")
    assert await users_repo.get_settings(conn, user_id=user.user_id) == users_repo.UserSettings(
        cache_ttl_days=3, report_sentences_min=50, report_sentences_max=60, report_locale="ru")


async def test_an_update_changes_only_what_it_names(conn: asyncpg.Connection) -> None:
    user = await users_repo.create_user(conn, email="s@example.com")
    changed = await users_repo.update_settings(conn, user_id=user.user_id, cache_ttl_days=0,
                                               report_locale="en")
    assert changed.cache_ttl_days == 0 and changed.report_locale == "en"
    assert (changed.report_sentences_min, changed.report_sentences_max) == (50, 60)
    assert await users_repo.get_settings(conn, user_id=user.user_id) == changed


@pytest.mark.parametrize(("change", "constraint"), [
    ({"report_sentences_min": 70}, "users_report_sentences_check"),  # above the stored max
    ({"report_sentences_max": 101}, "users_report_sentences_check"),
    ({"report_sentences_min": 19}, "users_report_sentences_check"),
    ({"cache_ttl_days": -1}, "users_cache_ttl_days_check"),
])
async def test_out_of_range_settings_are_refused_by_the_database(
    conn: asyncpg.Connection, change: dict[str, int], constraint: str
) -> None:
    user = await users_repo.create_user(conn, email="s@example.com")
    with pytest.raises(InputError) as info:
        async with conn.transaction():
            await users_repo.update_settings(conn, user_id=user.user_id, **change)
    assert info.value.details["constraint"] == constraint
