"""Storage keys: the one place that turns validated ids into store keys, and back.

The layout (identical on local disk and in an S3 bucket)::

    result_store/<platform_id>/<video_id>/<run_id>/manifest.json
    result_store/<platform_id>/<video_id>/<run_id>/<component>/<component>.npz
    frames/<run_id>/<name>                 union frames, kept for a few days
    uploads/<upload_id>/upload.json        one user's upload record (owner, facts, metadata)
    upload_content/<sha256>                an uploaded file, stored once per content hash

Every segment is validated before it becomes part of a key, and every store method calls
:func:`check_key` (or :func:`check_prefix`) first, so a key can never leave the store root
(``..``, absolute paths, backslashes, NUL) and ``result_store/`` holds no JSON other than the
run manifests. Violations raise :class:`~trendflow.errors.UnsafeStorageKey`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from uuid import UUID

from trendflow.contracts.identity import UPLOAD_ID_RE as _UPLOAD_VIDEO_ID
from trendflow.contracts.identity import YOUTUBE_ID_RE as _YOUTUBE_ID
from trendflow.errors import UnsafeStorageKey

RESULT_STORE: Final = "result_store"
FRAMES: Final = "frames"
UPLOADS: Final = "uploads"
UPLOAD_CONTENT: Final = "upload_content"
MANIFEST_NAME: Final = "manifest.json"
ARTIFACT_SUFFIX: Final = ".npz"

#: Platforms a video can come from. Uploaded files keep the platform they are analysed for and
#: are told apart by their ``up-…`` video id.
PLATFORM_IDS: Final = frozenset({"youtube", "upload"})

_SHA256 = re.compile(r"[0-9a-f]{64}")
_RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_COMPONENT = re.compile(r"[a-z][a-z0-9_]{0,63}")
# A file name inside frames/ or uploads/: no separators, no leading dot (hidden and temporary
# files of the local store start with a dot), at most 255 bytes like most file systems.
_FILENAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}")
_MAX_KEY_LENGTH: Final = 1024  # S3's limit, in UTF-8 bytes


@dataclass(frozen=True, slots=True)
class RunKey:
    """The parts of a key inside one run: the manifest (``component is None``) or an artifact."""

    platform_id: str
    video_id: str
    run_id: str
    component: str | None

    @property
    def is_manifest(self) -> bool:
        return self.component is None


def _refuse(message: str, key: str, **details: object) -> UnsafeStorageKey:
    return UnsafeStorageKey(message, key=key[:300], **details)


def validate_platform_id(platform_id: str) -> str:
    """Return ``platform_id`` if it is one of :data:`PLATFORM_IDS`."""
    if platform_id not in PLATFORM_IDS:
        raise _refuse(
            f"unknown platform id {platform_id!r}; expected one of {sorted(PLATFORM_IDS)}",
            str(platform_id),
            field="platform_id",
        )
    return platform_id


def validate_video_id(video_id: str) -> str:
    """Return ``video_id`` if it is a YouTube id (11 × ``[A-Za-z0-9_-]``) or ``up-`` + 16 hex."""
    if not isinstance(video_id, str) or not (
        _YOUTUBE_ID.fullmatch(video_id) or _UPLOAD_VIDEO_ID.fullmatch(video_id)
    ):
        raise _refuse(
            f"invalid video id {video_id!r}: expected 11 characters of [A-Za-z0-9_-] "
            "or 'up-' followed by 16 lowercase hex digits",
            str(video_id),
            field="video_id",
        )
    return video_id


def validate_run_id(run_id: str | UUID) -> str:
    """Return the canonical (lowercase, hyphenated) form of a run id; a UUID object is accepted."""
    if isinstance(run_id, UUID):
        return str(run_id)
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise _refuse(
            f"invalid run id {run_id!r}: expected a lowercase hyphenated UUID",
            str(run_id),
            field="run_id",
        )
    return run_id


def validate_component(component: str) -> str:
    """Return ``component`` if it matches ``[a-z][a-z0-9_]{0,63}``."""
    if not isinstance(component, str) or not _COMPONENT.fullmatch(component):
        raise _refuse(
            f"invalid component name {component!r}: expected [a-z][a-z0-9_]{{0,63}}",
            str(component),
            field="component",
        )
    return component


def validate_filename(name: str) -> str:
    """Return ``name`` if it is a plain file name usable as the last segment of a key."""
    if not isinstance(name, str) or not _FILENAME.fullmatch(name):
        raise _refuse(
            f"invalid file name {name!r}: expected 1–255 characters of [A-Za-z0-9._-], "
            "not starting with a dot",
            str(name),
            field="filename",
        )
    return name


def validate_upload_id(upload_id: str | UUID) -> str:
    """Return ``upload_id`` if it is a UUID (canonical form) or an ``up-`` + 16 hex id."""
    if isinstance(upload_id, str) and _UPLOAD_VIDEO_ID.fullmatch(upload_id):
        return upload_id
    try:
        return validate_run_id(upload_id)
    except UnsafeStorageKey:
        raise _refuse(
            f"invalid upload id {upload_id!r}: expected a UUID or 'up-' + 16 hex digits",
            str(upload_id),
            field="upload_id",
        ) from None


def video_prefix(platform_id: str, video_id: str) -> str:
    """``result_store/<platform_id>/<video_id>/``: every run of one video."""
    return f"{RESULT_STORE}/{validate_platform_id(platform_id)}/{validate_video_id(video_id)}/"


def run_prefix(platform_id: str, video_id: str, run_id: str | UUID) -> str:
    """``result_store/<platform_id>/<video_id>/<run_id>/``: one run's manifest and artifacts."""
    return f"{video_prefix(platform_id, video_id)}{validate_run_id(run_id)}/"


def manifest_key(platform_id: str, video_id: str, run_id: str | UUID) -> str:
    """The key of a run's ``manifest.json``."""
    return run_prefix(platform_id, video_id, run_id) + MANIFEST_NAME


def artifact_key(platform_id: str, video_id: str, run_id: str | UUID, component: str) -> str:
    """The key of one component's NPZ: ``…/<run_id>/<component>/<component>.npz``."""
    name = validate_component(component)
    return f"{run_prefix(platform_id, video_id, run_id)}{name}/{name}{ARTIFACT_SUFFIX}"


def frames_prefix(run_id: str | UUID) -> str:
    """``frames/<run_id>/``: frames kept for a run (deleted by retention)."""
    return f"{FRAMES}/{validate_run_id(run_id)}/"


def frame_key(run_id: str | UUID, name: str) -> str:
    """A file under :func:`frames_prefix`."""
    return frames_prefix(run_id) + validate_filename(name)


def upload_prefix(upload_id: str | UUID) -> str:
    """``uploads/<upload_id>/``: the source file of one upload and its metadata."""
    return f"{UPLOADS}/{validate_upload_id(upload_id)}/"


def upload_key(upload_id: str | UUID, filename: str) -> str:
    """A file under :func:`upload_prefix`. Sanitise user-given file names before calling."""
    return upload_prefix(upload_id) + validate_filename(filename)


def upload_content_key(sha256: str) -> str:
    """``upload_content/<sha256>``: the bytes of every upload with this content hash (one
    object however many uploads, of however many users, carry them)."""
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise _refuse(f"invalid content hash {sha256!r}: expected 64 lowercase hex digits",
                      str(sha256), field="sha256")
    return f"{UPLOAD_CONTENT}/{sha256}"


def parse_run_key(key: str) -> RunKey:
    """The inverse of :func:`manifest_key` and :func:`artifact_key` (used to rebuild the index).

    Raises :class:`UnsafeStorageKey` for any key that is not a manifest or a component artifact.
    """
    parts = key.split("/") if isinstance(key, str) else []
    if len(parts) in (5, 6) and parts[0] == RESULT_STORE:
        _, platform_id, video_id, run_id, *rest = parts
        validate_platform_id(platform_id)
        validate_video_id(video_id)
        validate_run_id(run_id)
        if rest == [MANIFEST_NAME]:
            return RunKey(platform_id, video_id, run_id, None)
        if len(rest) == 2 and rest[1] == rest[0] + ARTIFACT_SUFFIX:
            return RunKey(platform_id, video_id, run_id, validate_component(rest[0]))
    raise _refuse(
        f"{key!r} is neither a run manifest nor a component artifact "
        f"({RESULT_STORE}/<platform>/<video>/<run>/{MANIFEST_NAME} or "
        f".../<run>/<component>/<component>{ARTIFACT_SUFFIX})",
        str(key),
    )


def _check_segments(key: str, segments: list[str]) -> None:
    for segment in segments:
        if segment == "":
            raise _refuse(f"empty path segment in key {key!r}", key)
        if segment in (".", ".."):
            raise _refuse(f"relative path segment {segment!r} in key {key!r}", key)
        if segment.startswith("."):
            # The local store writes its temporary files as dot files; keys never clash with them.
            raise _refuse(f"segment {segment!r} of key {key!r} starts with a dot", key)


def _check_text(key: object) -> str:
    if not isinstance(key, str):
        raise UnsafeStorageKey(f"storage key must be a string, got {type(key).__name__}")
    if "\x00" in key:
        raise _refuse("NUL byte in storage key", key.replace("\x00", "\\x00"))
    if "\\" in key:
        raise _refuse(f"backslash in storage key {key!r}", key)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise _refuse(f"control character in storage key {key!r}", key)
    if key.startswith("/") or re.match(r"[A-Za-z]:", key):
        raise _refuse(f"absolute storage key {key!r}", key)
    if len(key.encode("utf-8")) > _MAX_KEY_LENGTH:
        raise _refuse(f"storage key longer than {_MAX_KEY_LENGTH} bytes", key)
    return key


def check_key(key: str) -> str:
    """Return ``key`` if a store may read or write it; raise :class:`UnsafeStorageKey` otherwise.

    Refuses traversal (``..``, ``.``), absolute keys, backslashes, NUL and control characters,
    empty segments (``a//b``, a trailing ``/``), dot-files, and any ``*.json`` under
    ``result_store/`` other than a run-level ``manifest.json``.
    """
    key = _check_text(key)
    if key == "":
        raise _refuse("empty storage key", key)
    _check_segments(key, key.split("/"))
    if key.startswith(RESULT_STORE + "/") and key.lower().endswith(".json"):
        try:
            parsed = parse_run_key(key)
        except UnsafeStorageKey:
            parsed = None
        if parsed is None or not parsed.is_manifest:
            raise _refuse(
                f"refusing {key!r}: the only JSON allowed under {RESULT_STORE}/ is "
                f"<platform>/<video>/<run>/{MANIFEST_NAME}",
                key,
                reason="stray_json",
            )
    return key


def check_prefix(prefix: str, *, for_delete: bool = False) -> str:
    """Return ``prefix`` if it is empty or a safe folder-like prefix ending in ``/``.

    With ``for_delete`` the empty prefix (the whole store) is refused.
    """
    prefix = _check_text(prefix)
    if prefix == "":
        if for_delete:
            raise _refuse("refusing to delete the whole store (empty prefix)", prefix)
        return prefix
    if not prefix.endswith("/"):
        raise _refuse(f"prefix {prefix!r} must be empty or end with '/'", prefix)
    _check_segments(prefix, prefix[:-1].split("/"))
    return prefix
