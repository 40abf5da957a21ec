"""Losing a whole node mid-run: the Segmenter and the chunks in its object store die with it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from tests.actors.conftest import COMPONENTS, PROFILE_ID, Runtime
from tests.actors.test_faults import _analysing, _with
from trendflow.contracts.keys import artifact_key
from trendflow.contracts.npz import decode_npz
from trendflow.db.repositories import profiles as profiles_repo
from trendflow.storage.factory import open_store

ROOT = Path(__file__).resolve().parents[2]
AUDIO_PROFILE = "ray-audio-test"


async def _line(proc: subprocess.Popen[str], want: str, timeout_s: float = 120.0) -> None:
    """Wait for the cluster process to print ``want`` (Ray prints its own notices too)."""
    assert proc.stdout is not None
    seen = []
    async with asyncio.timeout(timeout_s):
        while True:
            line = await asyncio.to_thread(proc.stdout.readline)
            if line.strip() == want:
                return
            assert line, f"cluster process exited ({proc.poll()}) before {want!r}: {seen[-5:]}"
            seen.append(line.strip())


class _Cluster:
    """The two-node cluster process (tests/actors/node_loss_cluster.py)."""

    def __init__(self, runtime: Runtime, tmp_path: Path, **rt: Any) -> None:
        self.settings = _with(runtime.settings, segmenter_cpus=0.0,
                              segmenter_resources={"seg_node": 0.5},
                              scheduler_resources={"head_node": 0.01}, **rt)
        config = tmp_path / "settings.json"
        config.write_text(self.settings.model_dump_json())
        assert self.settings.database.url is not None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.actors.node_loss_cluster", str(config)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True,
            env={**os.environ,
                 "NODE_LOSS_DATABASE_URL": self.settings.database.url.get_secret_value()},
            start_new_session=True,  # its Ray processes can be stopped as one group if it hangs
        )

    async def command(self, command: str, answer: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        await _line(self.proc, answer)

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


async def _assert_same_outputs(runtime: Runtime, run_id: str, reference: str,
                               components: tuple[str, ...]) -> None:
    [run] = (await runtime.runs([run_id])).values()
    [ref] = (await runtime.runs([reference])).values()
    store = open_store(runtime.settings)
    for name in components:
        got, want = [
            decode_npz(await store.get_bytes(artifact_key(r.platform_id, r.video_id, i, name)),
                       where=name).arrays
            for r, i in ((run, run_id), (ref, reference))
        ]
        for key, arr in want.items():
            np.testing.assert_array_equal(got[key], arr, err_msg=f"{name}.{key}")


async def _lose_the_node_mid_run(runtime: Runtime, cluster: _Cluster, clip: Any,
                                 profile_id: str, components: tuple[str, ...]) -> None:
    """A reference run, then the same clip with the workers busy while the Segmenter's node dies:
    the run finishes ``ok`` in its first claim with the reference's outputs."""
    await _line(cluster.proc, "ready")
    upload = await runtime.upload_clip(clip)
    [reference] = await runtime.queue(1, upload=upload, profile_id=profile_id)
    assert (await runtime.wait([reference], timeout_s=180))[reference].status == "ok"

    await cluster.command("pause", "paused")
    [run_id] = await runtime.queue(1, upload=upload, profile_id=profile_id)
    await _analysing(runtime, [run_id])
    await asyncio.sleep(1.0)  # work piles up for the paused workers
    await cluster.command("kill", "killed")
    row = (await runtime.wait([run_id], timeout_s=240))[run_id]
    assert row.status == "ok", row.error
    assert row.attempts == 1  # recovered inside the run, not by claiming it again
    await _assert_same_outputs(runtime, run_id, reference, components)


async def test_losing_the_segmenter_node_mid_run_changes_nothing_in_the_outputs(
    runtime: Runtime, long_clip, tmp_path: Path
) -> None:
    """The node holding the Segmenter (and the chunks it decoded, waiting for busy workers)
    dies while the run maps: the lost chunks are streamed again from a Segmenter on the
    replacement node, and only the maps that had not finished run again."""
    cluster = _Cluster(runtime, tmp_path, chunks_in_flight=4)
    try:
        await _lose_the_node_mid_run(runtime, cluster, long_clip, PROFILE_ID, COMPONENTS)
    finally:
        cluster.stop()


async def test_an_audio_track_lost_with_its_node_is_extracted_again(
    runtime: Runtime, long_clip, tmp_path: Path
) -> None:
    """An audio component waits for a busy worker while the Segmenter's node (holding the run's
    audio track) dies: the track is extracted again on the replacement node's Segmenter, which
    prepares the video anew."""
    async with runtime.pool.acquire() as conn:
        await profiles_repo.save_profile(conn, profile=profiles_repo.Profile(
            profile_id=AUDIO_PROFILE, name="audio only", sampling={"fps": 12.0, "height": 96},
            render={"engine": "template"},
            components=(profiles_repo.ProfileComponent("loudness"),),
        ))
    cluster = _Cluster(runtime, tmp_path)
    try:
        await _lose_the_node_mid_run(runtime, cluster, long_clip, AUDIO_PROFILE, ("loudness",))
    finally:
        cluster.stop()
