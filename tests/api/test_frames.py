"""``GET /api/runs/{id}/frame?t=``: the kept frame of a moment, for its owner only, until
retention deletes the frames archive.

The run is requested through the API and executed by the local runner into the harness's store
(manifest, NPZ and ``frames/<run_id>/``), as the runtime leaves it; retention is the real job.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from tests.api.test_delete import analysed, request_run
from tests.fixtures.api import ApiHarness
from tests.fixtures.media import MediaLibrary
from trendflow.jobs.retention import apply_retention


def _picture(body: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a decodable JPEG"
    return image


async def test_the_owner_sees_the_frame_of_each_moment_and_nobody_else_does(
    api: ApiHarness, media: MediaLibrary, tmp_path: Path
) -> None:
    run = await analysed(api, "alice", media.path("scene_cuts"), tmp_path, cache_ttl_days=0)
    url = f"/api/runs/{run['run_id']}/frame"
    first = await api.client.get(url, params={"t": 1.0}, headers=api["alice"].headers)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/jpeg"
    assert abs(float(first.headers["x-frame-time-s"]) - 1.0) < 0.5
    later = await api.client.get(url, params={"t": 3.0}, headers=api["alice"].headers)
    assert later.status_code == 200 and abs(float(later.headers["x-frame-time-s"]) - 3.0) < 0.5
    one, three = _picture(first.content), _picture(later.content)
    assert one.shape == three.shape and one.shape[0] <= 320  # a thumbnail, not the source
    # the clip changes scene every 2 s: the two moments are different pictures
    colour = [a.reshape(-1, 3).mean(axis=0) for a in (one, three)]
    assert np.abs(colour[0] - colour[1]).max() > 20

    for who in ("bob", "admin"):
        other = await api.client.get(url, params={"t": 1.0}, headers=api[who].headers)
        assert other.status_code == 404 and other.json()["code"] == "run_not_found", who
        assert other.headers["content-type"] == "application/json"
    assert (await api.client.get(url, params={"t": 1.0})).status_code == 401
    bad = await api.client.get(url, params={"t": -1}, headers=api["alice"].headers)
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_input"


async def test_a_queued_run_has_no_frame_yet_and_retention_makes_them_gone(
    api: ApiHarness, media: MediaLibrary, tmp_path: Path
) -> None:
    queued = await request_run(api, "bob", media.path("scene_cuts"), cache_ttl_days=0)
    early = await api.client.get(f"/api/runs/{queued['run_id']}/frame", params={"t": 1.0},
                                 headers=api["bob"].headers)
    assert early.status_code == 409 and early.json()["code"] == "run_not_ready"

    run = await analysed(api, "alice", media.path("scene_cuts"), tmp_path, cache_ttl_days=0)
    url = f"/api/runs/{run['run_id']}/frame"
    assert (await api.client.get(url, params={"t": 2.5},
                                 headers=api["alice"].headers)).status_code == 200
    days = api.ctx.settings.segmenter.frames_retention_days
    report = await apply_retention(api.ctx.store, api.ctx.settings,
                                   now=datetime.now(UTC) + timedelta(days=days + 1))
    assert run["run_id"] in report.frames_deleted_runs
    gone = await api.client.get(url, params={"t": 2.5}, headers=api["alice"].headers)
    assert gone.status_code == 410, gone.text
    assert gone.json()["code"] == "frames_expired"
    assert gone.json()["details"]["retention_days"] == days
    # the results themselves stay: only the frames were retention's to delete
    assert (await api.client.get(f"/api/runs/{run['run_id']}",
                                 headers=api["alice"].headers)).status_code == 200
    # still nobody else's business
    assert (await api.client.get(url, params={"t": 2.5},
                                 headers=api["bob"].headers)).status_code == 404
