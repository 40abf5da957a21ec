"""Losing a whole node mid-run: the Segmenter and the chunks in its object store die with it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.actors.conftest import COMPONENTS, Runtime
from tests.actors.test_faults import _analysing, _outputs, _with

ROOT = Path(__file__).resolve().parents[2]


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


async def test_losing_the_segmenter_node_mid_run_changes_nothing_in_the_outputs(
    runtime: Runtime, long_clip, tmp_path: Path
) -> None:
    """The node holding the Segmenter (and every chunk it decoded) dies while the run maps:
    the lost chunks are streamed again from a Segmenter on the replacement node, and only the
    maps that had not finished run again. The outputs equal an undisturbed run's."""
    settings = _with(runtime.settings, segmenter_cpus=0.0, segmenter_resources={"seg_node": 0.5},
                     scheduler_resources={"head_node": 0.01}, chunks_in_flight=4)
    config = tmp_path / "settings.json"
    config.write_text(settings.model_dump_json())
    assert settings.database.url is not None
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.actors.node_loss_cluster", str(config)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, env={**os.environ,
                        "NODE_LOSS_DATABASE_URL": settings.database.url.get_secret_value()},
        start_new_session=True,  # its Ray processes can be stopped as one group if it hangs
    )
    assert proc.stdin is not None
    try:
        await _line(proc, "ready")
        upload = await runtime.upload_clip(long_clip)
        [reference] = await runtime.queue(1, upload=upload)
        assert (await runtime.wait([reference], timeout_s=180))[reference].status == "ok"

        [run_id] = await runtime.queue(1, upload=upload)
        await _analysing(runtime, [run_id])
        proc.stdin.write("kill\n")
        proc.stdin.flush()
        await _line(proc, "killed")
        row = (await runtime.wait([run_id], timeout_s=240))[run_id]
        assert row.status == "ok", row.error
        assert row.attempts == 1  # recovered inside the run, not by claiming it again
        got, want = await _outputs(runtime, run_id), await _outputs(runtime, reference)
        for name in COMPONENTS:
            for key, arr in want[name].items():
                np.testing.assert_array_equal(got[name][key], arr, err_msg=f"{name}.{key}")
    finally:
        if proc.poll() is None:
            proc.stdin.write("stop\n")
            proc.stdin.flush()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
