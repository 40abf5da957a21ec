"""LocalStore's atomic writes: a killed writer leaves the old or the new file, never a torn one."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from trendflow.contracts import keys
from trendflow.errors import StorageError
from trendflow.storage.local import LocalStore

RUN = "0b7d3c1e-9f7a-4c2b-8e1d-3f5a6b7c8d9e"
MANIFEST = keys.manifest_key("youtube", "dQw4w9WgXcQ", RUN)
SIZE = 8 << 20
OLD = b'{"version": "old", "pad": "' + b"o" * SIZE + b'"}'
NEW = b'{"version": "new", "pad": "' + b"n" * SIZE + b'"}'

_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from trendflow.storage.local import LocalStore

    async def main() -> None:
        store = LocalStore(Path(sys.argv[1]))
        key, size = sys.argv[2], int(sys.argv[3])
        contents = [
            b'{"version": "new", "pad": "' + b"n" * size + b'"}',
            b'{"version": "old", "pad": "' + b"o" * size + b'"}',
        ]
        print("writing", flush=True)
        i = 0
        while True:
            await store.put_bytes(key, contents[i % 2])
            i += 1

    asyncio.run(main())
    """
)


async def test_killed_writer_never_leaves_a_torn_manifest(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    await store.put_bytes(MANIFEST, OLD)
    run_dir = tmp_path / "store" / Path(keys.run_prefix("youtube", "dQw4w9WgXcQ", RUN))
    killed_mid_write = 0
    rng = random.Random(7)
    for _ in range(12):
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(store.root), MANIFEST, str(SIZE)],
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )
        try:
            assert writer.stdout is not None
            assert writer.stdout.readline() == b"writing\n"
            time.sleep(rng.uniform(0.02, 0.3))
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=10)
            if writer.stdout is not None:
                writer.stdout.close()

        content = await store.get_bytes(MANIFEST)
        assert content in (OLD, NEW), f"torn manifest: {len(content)} bytes"
        assert await store.list("") == [MANIFEST]
        leftovers = [name for name in os.listdir(run_dir) if name != "manifest.json"]
        assert all(name.startswith(".manifest.json.") for name in leftovers)
        killed_mid_write += bool(leftovers)
        for name in leftovers:  # the next round should see only its own leftovers
            (run_dir / name).unlink()
        if killed_mid_write >= 3:
            break
    # The writer spends nearly all its time inside a write: the kill must have hit one.
    assert killed_mid_write >= 1


async def test_failed_write_leaves_the_old_object_and_no_temp_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    await store.put_bytes(MANIFEST, OLD)
    manifest_path = store.root / MANIFEST
    with pytest.raises(StorageError):
        await store.put_file(MANIFEST, tmp_path / "missing.json")
    # A directory as source: opening it fails after the temp file exists.
    with pytest.raises(StorageError):
        await store.put_file(MANIFEST, tmp_path)
    assert manifest_path.read_bytes() == OLD
    assert os.listdir(manifest_path.parent) == ["manifest.json"]


async def test_deleting_removes_empty_folders(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    await store.put_bytes(MANIFEST, b"{}")
    await store.delete(MANIFEST)
    assert os.listdir(store.root) == []
    await store.put_bytes(MANIFEST, b"{}")
    await store.delete_prefix(keys.video_prefix("youtube", "dQw4w9WgXcQ"))
    assert os.listdir(store.root) == []


async def test_check_reports_an_unwritable_root(tmp_path: Path) -> None:
    await LocalStore(tmp_path / "new-root").check()
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(StorageError) as info:
        await LocalStore(blocker / "store").check()
    assert str(blocker / "store") in str(info.value)
