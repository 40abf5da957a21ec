"""A result store in a local directory.

Every write goes to a temporary dot-file in the destination's own directory, is flushed and
fsynced, then moved over the destination with :func:`os.replace` (atomic on POSIX), and the
directory is fsynced so the rename survives a power loss. A reader therefore sees the old
object or the new one, never a torn one; a writer killed mid-write leaves at most a dot-file
that :meth:`LocalStore.list` never shows. Blocking file work runs in :func:`asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from trendflow.contracts.keys import check_key, check_prefix
from trendflow.errors import ArtifactNotFound, StorageError
from trendflow.storage.base import ObjectInfo

_CHUNK = 1 << 20
_TEMP_SUFFIX = ".tmp"


def _temp_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.{uuid.uuid4().hex}{_TEMP_SUFFIX}")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(target: Path, fill: Callable[[BinaryIO], object]) -> None:
    """Write ``target`` through a temporary sibling: ``fill`` writes the content."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_path(target)
    try:
        with open(temp, "xb") as out:
            fill(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


class LocalStore:
    """:class:`~trendflow.storage.base.ResultStore` over a directory; keys are relative paths."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def describe(self) -> str:
        """The absolute root directory."""
        return str(self.root)

    # -- paths -------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def _error(self, action: str, key: str, exc: OSError) -> StorageError:
        return StorageError(
            f"local store {self.root}: cannot {action} {key!r}: {exc.strerror or exc}",
            backend="local",
            root=str(self.root),
            key=key,
            errno=exc.errno,
        )

    def _missing(self, key: str) -> ArtifactNotFound:
        return ArtifactNotFound(f"no object {key!r} in {self.root}", key=key, store=self.describe())

    # -- writes ------------------------------------------------------------------------------

    async def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        """Write ``data`` at ``key`` atomically (replacing any previous object)."""
        target = self._path(key)
        digest = hashlib.sha256(data).hexdigest()

        def write() -> None:
            try:
                _atomic_write(target, lambda out: out.write(data))
            except OSError as exc:
                raise self._error("write", key, exc) from exc

        await asyncio.to_thread(write)
        return ObjectInfo(key=key, size=len(data), sha256=digest)

    async def put_file(self, key: str, path: Path) -> ObjectInfo:
        """Copy the file at ``path`` to ``key`` atomically, hashing it on the way."""
        target = self._path(key)
        source = Path(path)

        def copy() -> ObjectInfo:
            hasher = hashlib.sha256()
            size = 0

            def fill(out: BinaryIO) -> None:
                nonlocal size
                with open(source, "rb") as src:
                    while chunk := src.read(_CHUNK):
                        hasher.update(chunk)
                        out.write(chunk)
                        size += len(chunk)

            if not source.is_file():
                raise StorageError(
                    f"cannot store {key!r}: source file {source} does not exist or is not a file",
                    backend="local",
                    key=key,
                    source=str(source),
                )
            try:
                _atomic_write(target, fill)
            except OSError as exc:
                raise self._error("write", key, exc) from exc
            return ObjectInfo(key=key, size=size, sha256=hasher.hexdigest())

        return await asyncio.to_thread(copy)

    # -- reads -------------------------------------------------------------------------------

    async def get_bytes(self, key: str) -> bytes:
        """The content at ``key``; :class:`ArtifactNotFound` if there is none."""
        target = self._path(key)

        def read() -> bytes:
            try:
                return target.read_bytes()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
                raise self._missing(key) from exc
            except OSError as exc:
                raise self._error("read", key, exc) from exc

        return await asyncio.to_thread(read)

    async def get_file(self, key: str, dest: Path) -> Path:
        """Copy the object at ``key`` to ``dest`` (atomically, creating parent folders)."""
        source = self._path(key)
        dest = Path(dest)

        def copy() -> Path:
            try:
                with open(source, "rb") as src:
                    _atomic_write(dest, lambda out: shutil.copyfileobj(src, out, _CHUNK))
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
                if not source.is_file():
                    raise self._missing(key) from exc
                raise self._error(f"copy to {dest}", key, exc) from exc
            except OSError as exc:
                raise self._error(f"copy to {dest}", key, exc) from exc
            return dest

        return await asyncio.to_thread(copy)

    async def stat(self, key: str) -> ObjectInfo:
        """Size and sha256 of the object at ``key`` (the file is hashed: this reads it whole)."""
        target = self._path(key)

        def hash_file() -> ObjectInfo:
            hasher = hashlib.sha256()
            size = 0
            try:
                with open(target, "rb") as src:
                    while chunk := src.read(_CHUNK):
                        hasher.update(chunk)
                        size += len(chunk)
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
                raise self._missing(key) from exc
            except OSError as exc:
                raise self._error("read", key, exc) from exc
            return ObjectInfo(key=key, size=size, sha256=hasher.hexdigest())

        return await asyncio.to_thread(hash_file)

    async def exists(self, key: str) -> bool:
        """Whether an object is stored at ``key``."""
        target = self._path(key)
        return await asyncio.to_thread(target.is_file)

    def _walk(self, prefix: str) -> Iterator[tuple[str, Path]]:
        """``(key, path)`` of every visible object under ``prefix`` (temporary files hidden)."""
        # A prefix is a folder: walk only that folder instead of the whole store.
        base = self.root.joinpath(*prefix[:-1].split("/")) if prefix else self.root
        if not base.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith("."):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                yield key, Path(dirpath, name)

    async def list(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (empty, or ending in ``/``), sorted."""
        check_prefix(prefix)

        def walk() -> list[str]:
            try:
                return sorted(key for key, _ in self._walk(prefix))
            except OSError as exc:
                raise self._error("list", prefix, exc) from exc

        return await asyncio.to_thread(walk)

    # -- deletes -----------------------------------------------------------------------------

    def _prune_empty_dirs(self, start: Path) -> None:
        """Remove now-empty folders from ``start`` up to (not including) the root."""
        current = start
        while current != self.root and self.root in current.parents:
            try:
                current.rmdir()
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    return
                raise
            current = current.parent

    async def delete(self, key: str) -> None:
        """Delete the object at ``key``; :class:`ArtifactNotFound` if there is none."""
        target = self._path(key)

        def remove() -> None:
            try:
                if target.is_dir():
                    raise FileNotFoundError(errno.ENOENT, "is a folder", str(target))
                target.unlink()
                _fsync_dir(target.parent)
                self._prune_empty_dirs(target.parent)
            except FileNotFoundError as exc:
                raise self._missing(key) from exc
            except OSError as exc:
                raise self._error("delete", key, exc) from exc

        await asyncio.to_thread(remove)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (and leftover temporary files); returns the count.

        The empty prefix (the whole store) is refused.
        """
        check_prefix(prefix, for_delete=True)

        def remove_all() -> int:
            base = self.root.joinpath(*prefix[:-1].split("/"))
            try:
                count = sum(1 for _ in self._walk(prefix))
                if not base.is_dir():
                    return 0
                shutil.rmtree(base)
                _fsync_dir(base.parent)
                self._prune_empty_dirs(base.parent)
            except OSError as exc:
                raise self._error("delete", prefix, exc) from exc
            return count

        return await asyncio.to_thread(remove_all)

    async def check(self) -> None:
        """Raise :class:`StorageError` unless the root exists (or can be made) and is writable."""

        def probe() -> None:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                probe_path = self.root / f".probe.{uuid.uuid4().hex}{_TEMP_SUFFIX}"
                probe_path.write_bytes(b"")
                probe_path.unlink()
            except OSError as exc:
                raise StorageError(
                    f"local store {self.root} is not writable: {exc.strerror or exc}",
                    backend="local",
                    root=str(self.root),
                ) from exc

        await asyncio.to_thread(probe)

    async def close(self) -> None:
        """Nothing to release (the protocol's counterpart of :meth:`S3Store.close`)."""
