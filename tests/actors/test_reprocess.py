"""``python -m trendflow.jobs.reprocess``: selection, dry run, runs under the system account."""

from __future__ import annotations

import pytest

from tests.actors.conftest import Runtime
from trendflow.db.repositories import runs as runs_repo
from trendflow.jobs.reprocess import build_parser, reprocess


async def test_reprocess_queues_the_selected_videos_as_the_system_account(
    runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = await runtime.queue(2)
    rows = await runtime.runs([first, second])
    video = rows[first].video_id

    args = build_parser().parse_args(["--video-ids", video, "--dry-run"])
    assert await reprocess(args, runtime.settings) == 0
    assert f"would queue upload/{video} profile=ray-test" in capsys.readouterr().out
    async with runtime.pool.acquire() as conn:
        assert await runs_repo.queue_length(conn) == 2  # a dry run writes nothing

    args = build_parser().parse_args(["--video-ids", video, "--since", "2000-01-01"])
    assert await reprocess(args, runtime.settings) == 0
    out = capsys.readouterr().out
    assert "[1/1] queued" in out
    async with runtime.pool.acquire() as conn:
        queued = await conn.fetch(
            "SELECT r.video_id, u.email FROM runs r JOIN users u USING (user_id) "
            "WHERE r.status = 'queued'"
        )
    assert [(r["video_id"], r["email"]) for r in queued] == [
        (video, runtime.settings.runtime.system_user_email)
    ]
