"""What an upload is refused for before anything is stored: text that FFmpeg would "play" as
ANSI art is not a video (415), a file cut off part-way is refused at once (422) instead of
failing every run; a damaged file the Segmenter repairs is still accepted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api.test_routes import upload
from tests.fixtures.api import ApiHarness


@pytest.mark.parametrize("name", ["notes.txt", "readme.nfo"])
async def test_text_is_not_a_video(api: ApiHarness, tmp_path: Path, name: str) -> None:
    text = tmp_path / name
    text.write_text("lorem ipsum dolor sit amet, consectetur adipiscing elit\n" * 400)
    r = await upload(api, "alice", text)
    assert (r.status_code, r.json()["code"]) == (415, "unsupported_media"), r.text
    assert await api.ctx.store.list("") == []  # no record, no file


async def test_truncated_upload_is_refused_at_upload(api: ApiHarness, media: Any) -> None:
    r = await upload(api, "alice", media.path("truncated"))
    assert (r.status_code, r.json()["code"]) == (422, "video_file_corrupted"), r.text
    details = r.json()["details"]
    assert details["decodable_s"] < details["claimed_s"]
    assert await api.ctx.store.list("") == []  # no record, no file


async def test_a_repairable_upload_is_still_accepted(api: ApiHarness, media: Any) -> None:
    r = await upload(api, "alice", media.path("garbled_first_frame"))
    assert r.status_code == 201, r.text
