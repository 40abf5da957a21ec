"""A result store in an S3-compatible bucket (AWS S3, MinIO, …) through aioboto3.

Client lifecycle: the store holds one :class:`aioboto3.Session` and one client per event loop,
opened on first use and kept (a client is bound to the loop it was made on, and stores are used
from several loops: Ray actors, the Serve app, ``asyncio.run`` in the CLI). Opening a client
costs ~40 ms against ~5 ms for a small PUT on loopback, so a client per call would dominate.
``await store.close()`` closes the calling loop's client; call it before that loop ends.

Atomicity: a plain PUT replaces an object whole, so ``put_bytes`` is one PUT. Files above the
multipart threshold are sent as a multipart upload that becomes visible only on completion; on
any failure the upload is aborted so no parts are left behind.

Every object the store writes carries its sha256 in the object metadata (``x-amz-meta-sha256``);
:meth:`S3Store.stat` returns it (``None`` for objects written by other tools).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from trendflow.contracts.keys import check_key, check_prefix
from trendflow.errors import ArtifactNotFound, StorageError, TrendflowError
from trendflow.storage.base import ObjectInfo

_SHA256_META = "sha256"
_READ_CHUNK = 1 << 20
_DELETE_BATCH = 1000  # the S3 limit for one DeleteObjects request
_MIB = 1 << 20

_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "AuthorizationHeaderMalformed",
        "403",
    }
)
_UNREACHABLE = (
    EndpointConnectionError,
    ConnectTimeoutError,
    ConnectionClosedError,
    ReadTimeoutError,
)


class S3Store:
    """:class:`~trendflow.storage.base.ResultStore` over one S3 bucket (path-style addressing).

    ``multipart_threshold`` and ``multipart_chunk`` are in bytes; S3 and MinIO require every
    part but the last to be at least 5 MiB.
    """

    def __init__(
        self,
        *,
        endpoint_url: str | None,
        region: str,
        bucket: str,
        access_key_id: str,
        secret_access_key: str,
        multipart_threshold: int = 16 * _MIB,
        multipart_chunk: int = 8 * _MIB,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
        max_attempts: int = 3,
    ) -> None:
        if multipart_chunk <= 0 or multipart_threshold <= 0:
            raise ValueError("multipart sizes must be positive")
        self.endpoint_url = endpoint_url
        self.region = region
        self.bucket = bucket
        self.multipart_threshold = multipart_threshold
        self.multipart_chunk = multipart_chunk
        self._session = aioboto3.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
        )
        self._config = AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            retries={"max_attempts": max_attempts, "mode": "standard"},
        )
        self._clients: dict[asyncio.AbstractEventLoop, tuple[Any, Any]] = {}

    def __repr__(self) -> str:
        # Never the credentials.
        return f"S3Store(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r})"

    def describe(self) -> str:
        """``s3://<bucket>`` plus the endpoint when it is not AWS's default."""
        where = f"s3://{self.bucket}"
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[Any]:
        """The running loop's client (made on first use, kept until :meth:`close`)."""
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is None:
            for stale in [lp for lp in self._clients if lp.is_closed()]:
                # A loop that ended without close(): its client cannot be closed any more.
                del self._clients[stale]
            context = self._session.client(
                "s3", endpoint_url=self.endpoint_url, config=self._config
            )
            client = await context.__aenter__()
            entry = self._clients.setdefault(loop, (context, client))
            if entry[1] is not client:  # another task of this loop made one meanwhile
                await context.__aexit__(None, None, None)
        yield entry[1]

    async def close(self) -> None:
        """Close the client of the running event loop (the store stays usable: it reopens)."""
        entry = self._clients.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[0].__aexit__(None, None, None)

    # -- errors ------------------------------------------------------------------------------

    def _translate(self, exc: Exception, action: str, key: str | None) -> TrendflowError:
        """Map a botocore error to the error tree. Server messages are not copied: only codes."""
        where = f"{self.describe()}"
        details: dict[str, Any] = {"backend": "s3", "bucket": self.bucket, "operation": action}
        if self.endpoint_url:
            details["endpoint_url"] = self.endpoint_url
        if key is not None:
            details["key"] = key
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            details.update(s3_code=code, http_status=status)
            if code == "NoSuchBucket" or (key is None and code in _MISSING_CODES):
                return StorageError(
                    f"S3 bucket {self.bucket!r} does not exist ({where})",
                    reason="no_bucket",
                    **details,
                )
            if code in _MISSING_CODES:
                return ArtifactNotFound(f"no object {key!r} in {where}", key=key, store=where)
            if code in _AUTH_CODES or status == 403:
                return StorageError(
                    f"S3 refused the credentials for {where} while trying to {action} "
                    f"({code or status}): check TRENDFLOW_STORAGE__S3_ACCESS_KEY_ID and "
                    "TRENDFLOW_STORAGE__S3_SECRET_ACCESS_KEY",
                    reason="auth",
                    **details,
                )
            return StorageError(
                f"S3 {action} failed on {where}: {code or 'error'} (HTTP {status})",
                reason="s3_error",
                **details,
            )
        if isinstance(exc, _UNREACHABLE):
            return StorageError(
                f"cannot reach S3 endpoint {self.endpoint_url or 'AWS'} to {action} "
                f"({type(exc).__name__})",
                reason="unreachable",
                **details,
            )
        return StorageError(
            f"S3 {action} failed on {where}: {type(exc).__name__}", reason="client_error", **details
        )

    # -- writes ------------------------------------------------------------------------------

    async def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        """Store ``data`` at ``key`` with one PUT (S3 replaces objects atomically)."""
        check_key(key)
        digest = hashlib.sha256(data).hexdigest()
        try:
            async with self._client() as s3:
                await s3.put_object(
                    Bucket=self.bucket, Key=key, Body=data, Metadata={_SHA256_META: digest}
                )
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, "put", key) from exc
        return ObjectInfo(key=key, size=len(data), sha256=digest)

    async def put_file(self, key: str, path: Path) -> ObjectInfo:
        """Upload the file at ``path``: one PUT up to the threshold, multipart above it."""
        check_key(key)
        source = Path(path)
        if not source.is_file():
            raise StorageError(
                f"cannot store {key!r}: source file {source} does not exist or is not a file",
                backend="s3",
                key=key,
                source=str(source),
            )
        try:
            size = source.stat().st_size
            if size <= self.multipart_threshold:
                data = await asyncio.to_thread(source.read_bytes)
                return await self.put_bytes(key, data)
            # The sha256 goes into the metadata when the upload is created, so hash first;
            # the parts are hashed again on the way and must agree.
            size, digest = await asyncio.to_thread(_hash_file, source)
            await self._multipart(key, source, digest)
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, "put", key) from exc
        return ObjectInfo(key=key, size=size, sha256=digest)

    async def _multipart(self, key: str, source: Path, digest: str) -> None:
        async with self._client() as s3:
            created = await s3.create_multipart_upload(
                Bucket=self.bucket, Key=key, Metadata={_SHA256_META: digest}
            )
            upload_id = created["UploadId"]
            try:
                parts: list[dict[str, Any]] = []
                hasher = hashlib.sha256()
                with open(source, "rb") as src:
                    number = 1
                    while chunk := await asyncio.to_thread(src.read, self.multipart_chunk):
                        hasher.update(chunk)
                        part = await s3.upload_part(
                            Bucket=self.bucket,
                            Key=key,
                            UploadId=upload_id,
                            PartNumber=number,
                            Body=chunk,
                        )
                        parts.append({"PartNumber": number, "ETag": part["ETag"]})
                        number += 1
                if hasher.hexdigest() != digest:
                    raise StorageError(
                        f"cannot store {key!r}: {source} changed while it was being uploaded",
                        backend="s3",
                        key=key,
                        source=str(source),
                    )
                await s3.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
            except BaseException:
                # Shielded: a cancelled upload must still release its parts on the server.
                await asyncio.shield(
                    _abort_quietly(s3, bucket=self.bucket, key=key, upload_id=upload_id)
                )
                raise

    # -- reads -------------------------------------------------------------------------------

    async def get_bytes(self, key: str) -> bytes:
        """The content at ``key``; :class:`ArtifactNotFound` if there is none."""
        check_key(key)
        try:
            async with self._client() as s3:
                response = await s3.get_object(Bucket=self.bucket, Key=key)
                body = response["Body"]
                async with body:
                    return bytes(await body.read())
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, "get", key) from exc

    async def get_file(self, key: str, dest: Path) -> Path:
        """Download ``key`` to ``dest`` through a temporary sibling, then rename it into place."""
        check_key(key)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        temp = dest.with_name(f".{dest.name}.{os.urandom(8).hex()}.tmp")
        try:
            async with self._client() as s3:
                response = await s3.get_object(Bucket=self.bucket, Key=key)
                with open(temp, "wb") as out:
                    body = response["Body"]
                    async with body:
                        async for chunk in body.iter_chunks(_READ_CHUNK):
                            await asyncio.to_thread(out.write, chunk)
                    out.flush()
                    os.fsync(out.fileno())
            os.replace(temp, dest)
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, "get", key) from exc
        finally:
            temp.unlink(missing_ok=True)
        return dest

    async def stat(self, key: str) -> ObjectInfo:
        """Size and the stored sha256 (``None`` when the object has no such metadata)."""
        check_key(key)
        try:
            async with self._client() as s3:
                head = await s3.head_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, "stat", key) from exc
        metadata = {k.lower(): v for k, v in head.get("Metadata", {}).items()}
        return ObjectInfo(
            key=key, size=int(head["ContentLength"]), sha256=metadata.get(_SHA256_META)
        )

    async def exists(self, key: str) -> bool:
        """Whether an object is stored at ``key``."""
        try:
            await self.stat(key)
        except ArtifactNotFound:
            return False
        return True

    async def _iter_keys(self, s3: Any, prefix: str) -> AsyncIterator[str]:
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]

    async def list(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (empty, or ending in ``/``), sorted; pages are followed."""
        check_prefix(prefix)
        try:
            async with self._client() as s3:
                return sorted([key async for key in self._iter_keys(s3, prefix)])
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, "list", None) from exc

    # -- deletes -----------------------------------------------------------------------------

    async def delete(self, key: str) -> None:
        """Delete the object at ``key``; :class:`ArtifactNotFound` if there is none."""
        check_key(key)
        try:
            async with self._client() as s3:
                # S3 deletes missing keys without complaint; the protocol reports them.
                await s3.head_object(Bucket=self.bucket, Key=key)
                await s3.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, "delete", key) from exc

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` in batches of 1000; returns the count.

        The empty prefix (the whole bucket) is refused.
        """
        check_prefix(prefix, for_delete=True)
        deleted = 0
        try:
            async with self._client() as s3:
                # Collect first: deleting while paginating can skip keys on some servers.
                keys = [key async for key in self._iter_keys(s3, prefix)]
                for start in range(0, len(keys), _DELETE_BATCH):
                    batch = keys[start : start + _DELETE_BATCH]
                    response = await s3.delete_objects(
                        Bucket=self.bucket,
                        Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                    )
                    errors = response.get("Errors", [])
                    deleted += len(batch) - len(errors)
                    if errors:
                        first = errors[0]
                        raise StorageError(
                            f"S3 refused to delete {len(errors)} of {len(batch)} objects under "
                            f"{prefix!r} in {self.describe()} (first: {first.get('Key')!r}, "
                            f"{first.get('Code')})",
                            backend="s3",
                            bucket=self.bucket,
                            prefix=prefix,
                            deleted=deleted,
                        )
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, "delete", None) from exc
        return deleted

    async def check(self) -> None:
        """Raise :class:`StorageError` unless the bucket is reachable with these credentials."""
        try:
            async with self._client() as s3:
                await s3.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, "check", None) from exc


async def _abort_quietly(s3: Any, *, bucket: str, key: str, upload_id: str) -> None:
    # The original failure is what the caller needs; a bucket lifecycle rule for incomplete
    # uploads cleans up what an abort could not reach.
    with contextlib.suppress(ClientError, BotoCoreError):
        await s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)


def _hash_file(path: Path) -> tuple[int, str]:
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as src:
        while chunk := src.read(_READ_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return size, hasher.hexdigest()
