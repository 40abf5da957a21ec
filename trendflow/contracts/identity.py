"""Run identity: which video, which run, which configuration, which code.

Six fields identify every result (DESIGN.md §3) and travel into the manifest and the ``meta`` of
every NPZ:

- ``platform_id``: ``"youtube"`` for videos fetched from YouTube, ``"upload"`` for files users
  upload (they need a namespace of their own so an upload id can never collide with a YouTube id);
- ``video_id``: the 11-character YouTube id, or ``up-`` + 16 hex of the uploaded file's sha256;
- ``run_id``: a UUID4 made by the backend;
- ``config_hash``: :func:`trendflow.contracts.profile.config_hash` of the normalized profile;
- ``sampling_policy_version``: :data:`SAMPLING_POLICY_VERSION` (the rules are
  :mod:`trendflow.pipeline.sampling`);
- ``dataprocessor_version``: the installed ``trendflow`` package version.

The backend computes them; the pipeline only passes them on.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import ipaddress
import os
import re
import uuid
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trendflow.errors import ConfigError, InvalidIdentifier, InvalidVideoUrl

SAMPLING_POLICY_VERSION = "tl12-h320-v1"
"""Names the sampling policy (the analysis timeline and the index rules of
:mod:`trendflow.pipeline.sampling`): bump it whenever they change, because cached results become
incomparable."""

PlatformId = Literal["youtube", "upload"]
PLATFORMS: tuple[str, ...] = ("youtube", "upload")

YOUTUBE_ID_RE = re.compile(r"[A-Za-z0-9_-]{11}")
UPLOAD_ID_RE = re.compile(r"up-[0-9a-f]{16}")
SHA256_HEX_RE = re.compile(r"[0-9a-f]{64}")

# Constrained strings whose patterns also appear in the generated JSON Schemas.
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
VideoId = Annotated[str, Field(pattern=r"^(?:[A-Za-z0-9_-]{11}|up-[0-9a-f]{16})$")]
RunId = Annotated[
    str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
]
Version = Annotated[str, Field(pattern=r"^\S(?:.{0,62}\S)?$")]

_WATCH_HOSTS = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com"})
_SHORT_HOSTS = frozenset({"youtu.be"})
_NOCOOKIE_HOSTS = frozenset({"youtube-nocookie.com", "www.youtube-nocookie.com"})
# Path forms on the youtube.com hosts whose second segment is the video id.
_ID_PATH_PREFIXES = frozenset({"shorts", "embed", "live", "v"})
_CHANNEL_PREFIXES = frozenset({"channel", "c", "user"})
_DEFAULT_PORTS = {"https": 443, "http": 80}
_HASH_CHUNK = 1 << 20


def new_run_id() -> str:
    """A fresh run id: a random UUID4 in canonical lowercase form."""
    return str(uuid.uuid4())


def canonical_run_id(value: str) -> str:
    """``value`` as a canonical UUID4 string, or :class:`InvalidIdentifier`."""
    try:
        parsed = uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise InvalidIdentifier(f"run_id {value!r} is not a UUID", field="run_id") from None
    if parsed.version != 4:
        raise InvalidIdentifier(
            f"run_id {value!r} is a version-{parsed.version} UUID; run ids are UUID4",
            field="run_id",
        )
    return str(parsed)


def _refuse(url: str, why: str) -> InvalidVideoUrl:
    shown = url if len(url) <= 200 else url[:200] + "…"
    return InvalidVideoUrl(f"not a YouTube video URL ({why}): {shown!r}", url=shown, reason=why)


def parse_youtube_video_id(url: str) -> str:
    """The 11-character video id of a YouTube video URL, in any form users paste.

    Accepted: ``watch?v=ID`` on youtube.com, www., m. and music. hosts; ``youtu.be/ID``;
    ``/shorts/ID``, ``/embed/ID``, ``/live/ID``, ``/v/ID``; ``youtube-nocookie.com/embed/ID``;
    http or https or no scheme; extra query parameters (``t``, ``si``, ``list``…) and fragments;
    surrounding whitespace. Everything else raises :class:`InvalidVideoUrl` saying why: other or
    look-alike hosts, IP literals, user info, non-default ports, other schemes (``file://``),
    playlists and channel pages without a video, malformed ids.
    """
    if not isinstance(url, str):
        raise InvalidVideoUrl(f"a video URL must be text, got {type(url).__name__}")
    text = url.strip()
    if not text:
        raise _refuse(url, "empty")
    # urlsplit silently drops tabs and newlines inside a URL and treats "\" loosely: refuse them
    # rather than analyse a video the user did not paste.
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F or ch == "\\" for ch in text):
        raise _refuse(url, "contains whitespace, control characters or backslashes")
    if "://" not in text:
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", text) and not re.match(
            r"[^/:?#]+:\d*(?:[/?#]|$)", text
        ):
            raise _refuse(url, "unsupported scheme")
        text = "https:" + text if text.startswith("//") else "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise _refuse(url, f"malformed URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise _refuse(url, f"scheme {scheme!r} is not http or https")
    if "@" in parts.netloc:
        raise _refuse(url, "user info in the URL")
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        raise _refuse(url, f"port {port}")
    host = (parts.hostname or "").lower()
    if not host:
        raise _refuse(url, "no host")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise _refuse(url, "an IP address is not a YouTube host")
    segments = [s for s in parts.path.split("/")]
    # "/a/b/" → ["", "a", "b", ""]: drop the leading empty segment and one trailing slash.
    path = segments[1:]
    if path and path[-1] == "":
        path = path[:-1]

    if host in _SHORT_HOSTS:
        if len(path) != 1:
            raise _refuse(url, "youtu.be links have exactly one path segment, the video id")
        return _check_id(url, path[0])
    if host in _NOCOOKIE_HOSTS:
        if len(path) != 2 or path[0] != "embed":
            raise _refuse(url, "youtube-nocookie.com links must be /embed/<id>")
        return _check_id(url, path[1])
    if host not in _WATCH_HOSTS:
        raise _refuse(url, f"host {host!r} is not YouTube")

    if path == ["watch"]:
        query = parse_qs(parts.query, keep_blank_values=True)
        values = query.get("v", [])
        if not values:
            if "list" in query:
                raise _refuse(url, "a playlist link without a video (v=) parameter")
            raise _refuse(url, "watch link without a v= parameter")
        if len(set(values)) > 1:
            raise _refuse(url, "several different v= parameters")
        return _check_id(url, values[0])
    if path and path[0] == "playlist":
        raise _refuse(url, "a playlist link without a video (v=) parameter")
    if path and (path[0].startswith("@") or path[0] in _CHANNEL_PREFIXES):
        raise _refuse(url, "a channel page, not a video")
    if len(path) == 2 and path[0] in _ID_PATH_PREFIXES:
        return _check_id(url, path[1])
    raise _refuse(url, f"unrecognised YouTube path {parts.path!r}")


def youtube_watch_url(video_id: str) -> str:
    """The canonical URL of a YouTube video id: what is fetched and stored with a run."""
    return f"https://www.youtube.com/watch?v={video_id}"


def _check_id(url: str, candidate: str) -> str:
    if not YOUTUBE_ID_RE.fullmatch(candidate):
        raise _refuse(url, f"video id {candidate!r} is not 11 characters of A-Z a-z 0-9 _ -")
    return candidate


class UploadHasher:
    """Streaming sha256 of an upload as it arrives; :attr:`video_id` once all bytes are in."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.size += len(chunk)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    @property
    def video_id(self) -> str:
        if self.size == 0:
            raise InvalidIdentifier("an empty upload has no video id", field="video_id")
        return upload_video_id(self.sha256)


def sha256_file(path: str | os.PathLike[str], *, chunk_size: int = _HASH_CHUNK) -> str:
    """Hex sha256 of a file, read in chunks (constant memory for any file size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def upload_video_id(source: str | bytes | os.PathLike[str]) -> str:
    """``up-`` + the first 16 hex of the upload's sha256.

    ``source`` is the sha256 hex digest (``str``, 64 hex characters), the file's content
    (``bytes``) or its path (:class:`os.PathLike`). A ``str`` is never taken as a path: pass a
    :class:`pathlib.Path` for that.
    """
    match source:
        case bytes() | bytearray() | memoryview():
            if len(source) == 0:
                raise InvalidIdentifier("an empty upload has no video id", field="video_id")
            digest = hashlib.sha256(source).hexdigest()
        case str():
            digest = source.lower()
            if not SHA256_HEX_RE.fullmatch(digest):
                raise InvalidIdentifier(
                    f"expected a sha256 hex digest (64 hex characters), got {source!r}; "
                    "pass a pathlib.Path to hash a file",
                    field="video_id",
                )
        case os.PathLike():
            path = Path(source)
            if not path.is_file():
                raise InvalidIdentifier(f"upload file {path} does not exist", field="video_id")
            if path.stat().st_size == 0:
                raise InvalidIdentifier(f"upload file {path} is empty", field="video_id")
            digest = sha256_file(path)
        case _:
            raise TypeError(f"upload_video_id takes str, bytes or a path, not {type(source)}")
    return "up-" + digest[:16]


def validate_video_id(platform_id: str, video_id: str) -> str:
    """``video_id`` unchanged if valid on ``platform_id``, else :class:`InvalidIdentifier`.

    These ids become storage key segments, so nothing else (no ``/``, ``..``, NUL) gets through.
    """
    if platform_id == "youtube":
        if isinstance(video_id, str) and YOUTUBE_ID_RE.fullmatch(video_id):
            return video_id
        raise InvalidIdentifier(
            f"YouTube video_id {video_id!r} is not 11 characters of A-Z a-z 0-9 _ -",
            field="video_id",
        )
    if platform_id == "upload":
        if isinstance(video_id, str) and UPLOAD_ID_RE.fullmatch(video_id):
            return video_id
        raise InvalidIdentifier(
            f"upload video_id {video_id!r} is not 'up-' followed by 16 lowercase hex digits",
            field="video_id",
        )
    raise InvalidIdentifier(
        f"unknown platform_id {platform_id!r}; known: {list(PLATFORMS)}", field="platform_id"
    )


def dataprocessor_version() -> str:
    """The installed ``trendflow`` version. Not installed → :class:`ConfigError` (no default)."""
    try:
        return importlib.metadata.version("trendflow")
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            "the trendflow package is not installed, so dataprocessor_version is unknown; "
            "install it (pip install -e .) instead of running from a bare checkout"
        ) from None


class RunIdentity(BaseModel):
    """The six fields that identify a run; identical in the manifest and every NPZ ``meta``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform_id: PlatformId
    video_id: VideoId
    run_id: RunId
    config_hash: Sha256Hex
    sampling_policy_version: Version
    dataprocessor_version: Version

    @field_validator("run_id", mode="before")
    @classmethod
    def _run_id(cls, value: object) -> object:
        # Accept any spelling of a UUID4 (upper case, braces, uuid.UUID) and store it canonical.
        try:
            return canonical_run_id(str(value))
        except InvalidIdentifier as exc:
            raise ValueError(exc.message) from None

    @model_validator(mode="after")
    def _video_id(self) -> Self:
        try:
            validate_video_id(self.platform_id, self.video_id)
        except InvalidIdentifier as exc:
            raise ValueError(exc.message) from None
        return self

    @classmethod
    def create(
        cls,
        *,
        platform_id: PlatformId,
        video_id: str,
        config_hash: str,
        run_id: str | None = None,
    ) -> RunIdentity:
        """A new identity with this release's sampling policy and package version."""
        return cls(
            platform_id=platform_id,
            video_id=video_id,
            run_id=run_id if run_id is not None else new_run_id(),
            config_hash=config_hash,
            sampling_policy_version=SAMPLING_POLICY_VERSION,
            dataprocessor_version=dataprocessor_version(),
        )

    def fields(self) -> dict[str, str]:
        """The six fields as a plain dict (what goes into JSON)."""
        return self.model_dump()


__all__ = [
    "PLATFORMS",
    "PlatformId",
    "RunIdentity",
    "UploadHasher",
    "canonical_run_id",
    "dataprocessor_version",
    "new_run_id",
    "parse_youtube_video_id",
    "youtube_watch_url",
    "sha256_file",
    "upload_video_id",
    "validate_video_id",
]
