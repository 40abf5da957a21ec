"""Build the configured result store from :class:`~trendflow.settings.Settings`."""

from __future__ import annotations

from pydantic import SecretStr

from trendflow.errors import ConfigError
from trendflow.settings import Settings
from trendflow.storage.base import ResultStore
from trendflow.storage.local import LocalStore
from trendflow.storage.s3 import S3Store

_MIB = 1 << 20


def _reveal(secret: SecretStr | None) -> str:
    return secret.get_secret_value() if secret is not None else ""


def open_store(settings: Settings) -> ResultStore:
    """The store ``settings.storage.backend`` names.

    ``local``: a :class:`LocalStore` at ``settings.store_root``. ``s3``: an :class:`S3Store`;
    the bucket and both credentials are required (:class:`ConfigError` names the missing
    variable). Nothing touches the disk or the network until the first operation.
    """
    storage = settings.storage
    match storage.backend:
        case "local":
            return LocalStore(settings.store_root)
        case "s3":
            bucket = storage.s3_bucket or ""
            key_id = _reveal(storage.s3_access_key_id)
            secret = _reveal(storage.s3_secret_access_key)
            missing = [
                env
                for env, value in (
                    ("TRENDFLOW_STORAGE__S3_BUCKET", bucket),
                    ("TRENDFLOW_STORAGE__S3_ACCESS_KEY_ID", key_id),
                    ("TRENDFLOW_STORAGE__S3_SECRET_ACCESS_KEY", secret),
                )
                if not value
            ]
            if missing:
                raise ConfigError(
                    "the S3 result store needs " + ", ".join(missing) + " to be set",
                    missing=missing,
                )
            return S3Store(
                endpoint_url=storage.s3_endpoint_url or None,
                region=storage.s3_region,
                bucket=bucket,
                access_key_id=key_id,
                secret_access_key=secret,
                multipart_threshold=storage.s3_multipart_threshold_mb * _MIB,
                multipart_chunk=storage.s3_multipart_chunk_mb * _MIB,
            )
    raise ConfigError(f"unknown storage backend {storage.backend!r}", backend=storage.backend)
