"""The result-store protocol: one interface over a local directory and an S3 bucket.

Keys are ``/``-separated strings relative to the store root (the same keys in both backends),
built by :mod:`trendflow.contracts.keys` from validated ids only. Writes are atomic: a reader sees
the old object or the new one, never a torn one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str | None = None  # known when the store wrote or hashed the object


@runtime_checkable
class ResultStore(Protocol):
    """Async object store. Missing keys raise :class:`trendflow.errors.ArtifactNotFound`."""

    async def put_bytes(self, key: str, data: bytes) -> ObjectInfo: ...

    async def put_file(self, key: str, path: Path) -> ObjectInfo: ...

    async def get_bytes(self, key: str) -> bytes: ...

    async def get_file(self, key: str, dest: Path) -> Path: ...

    async def stat(self, key: str) -> ObjectInfo: ...

    async def exists(self, key: str) -> bool: ...

    async def list(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (a folder-like prefix ending in ``/`` or empty), sorted."""
        ...

    async def delete(self, key: str) -> None: ...

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every key under ``prefix``; returns how many were removed."""
        ...

    async def check(self) -> None:
        """Raise :class:`trendflow.errors.StorageError` unless the store is usable (health)."""
        ...

    async def close(self) -> None:
        """Release the running event loop's connections (the store stays usable)."""
        ...

    def describe(self) -> str:
        """Human-readable location, e.g. ``/data/store`` or ``s3://bucket``."""
        ...
