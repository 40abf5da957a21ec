"""Frames travel through the object store, and only a bounded number of chunks at a time."""

from __future__ import annotations

import asyncio
import math

import ray

from tests.actors.conftest import Runtime, save_test_profile
from trendflow.settings import Settings


def _plasma_bytes() -> int:
    from ray._private.internal_api import get_memory_info_reply, get_state_from_address

    reply = get_memory_info_reply(get_state_from_address(ray.get_runtime_context().gcs_address))
    return int(reply.store_stats.object_store_bytes_used)


async def test_object_store_use_stays_under_the_chunks_in_flight_bound(
    runtime: Runtime, start_scheduler, long_clip
) -> None:
    in_flight = 1
    settings: Settings = runtime.settings.model_copy(update={
        "runtime": runtime.settings.runtime.model_copy(update={"chunks_in_flight": in_flight})
    })
    async with runtime.pool.acquire() as conn:
        await save_test_profile(conn, "ray-320", height=320)
    start_scheduler(settings)
    upload = await runtime.upload_clip(long_clip)
    baseline = _plasma_bytes()
    [run_id] = await runtime.queue(1, profile_id="ray-320", upload=upload)
    peak = 0
    while True:
        peak = max(peak, _plasma_bytes() - baseline)
        [row] = (await runtime.runs([run_id])).values()
        if row.status not in ("queued", "running"):
            break
        await asyncio.sleep(0.05)
    assert row.status == "ok", row.error

    width = 2 * round(320 * 160 / 96 / 2)  # scale=-2:320 of a 160×96 clip
    frame = 320 * width * 3
    chunk = settings.segmenter.chunk_seconds * 12 * frame
    whole_video = math.ceil(long_clip.duration_s * 12) * frame
    # One chunk being mapped plus one decoded ahead (generator backpressure), with slack for
    # the context frame and the small partial results.
    bound = (in_flight + 1) * chunk * 1.1 + 4 * 2**20
    assert peak > chunk / 2  # frames really went through the object store
    assert peak <= bound, (peak, bound)
    assert whole_video > 3 * bound  # holding the whole video would have broken the bound
