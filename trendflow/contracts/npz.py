"""One component's NPZ artifact: writer, reader and validator (DESIGN.md §3).

An artifact is a zip of ``.npy`` members that ``np.load(..., allow_pickle=False)`` reads:

- ``meta``: a 0-d unicode array holding JSON (:class:`NpzMeta`): the six run-identity fields,
  ``component``, ``schema_version``, ``producer_version``, ``model``, ``status`` (``ok`` or
  ``empty``), ``empty_reason``, ``created_at``;
- for ``ok``: exactly the keys of the component's schema, with their dtypes and shapes
  (frame-based components include ``frame_indices`` int64 and ``timestamps_s`` float64);
- for ``empty``: nothing but ``meta`` (the reason is in it).

Equal inputs give byte-identical files (sorted members, fixed zip timestamps, C-ordered arrays),
so a re-run that computes the same features writes the same sha256.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final, Literal, Self

import numpy as np
from pydantic import AwareDatetime, Field, ValidationError, model_validator

from trendflow.contracts.arrays import ArraySpec, check_arrays
from trendflow.contracts.empty import EmptyReason
from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.profile import canonical_json
from trendflow.errors import ContractViolation

if TYPE_CHECKING:
    from trendflow.contracts.schemas import ComponentSchema
    from trendflow.pipeline.components.base import Component, ComponentResult

META_KEY = "meta"
META_VERSION: Final = 1
NpzStatus = Literal["ok", "empty"]

_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest zip timestamp: a constant, not "now"
_IDENTITY_FIELDS = tuple(RunIdentity.model_fields)


class NpzMeta(RunIdentity):
    """The JSON inside an artifact's ``meta`` key: run identity plus what produced the file."""

    meta_version: Literal[1] = META_VERSION
    component: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    schema_version: int = Field(ge=1)
    producer_version: str = Field(min_length=1)
    model: str | None = None
    status: NpzStatus
    empty_reason: EmptyReason | None = None
    created_at: AwareDatetime

    @model_validator(mode="after")
    def _reason(self) -> Self:
        if (self.status == "empty") != (self.empty_reason is not None):
            raise ValueError("empty_reason is set exactly when status is 'empty'")
        return self

    @property
    def identity(self) -> RunIdentity:
        """The six run-identity fields."""
        return RunIdentity(**{name: getattr(self, name) for name in _IDENTITY_FIELDS})


@dataclass(frozen=True, slots=True)
class NpzArtifact:
    """A decoded artifact: its meta and its data arrays (``meta`` itself not included)."""

    meta: NpzMeta
    arrays: dict[str, np.ndarray]


def _violation(where: str, problems: list[str]) -> ContractViolation:
    return ContractViolation("; ".join(problems), problems=problems, where=where)


def _meta_errors(exc: ValidationError, where: str) -> list[str]:
    return [
        f"{where}: meta.{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
        for e in exc.errors()
    ]


def _frame_problems(arrays: Mapping[str, np.ndarray], where: str) -> list[str]:
    """Timeline keys must be usable as such: increasing, non-negative, finite."""
    problems = []
    idx = arrays.get("frame_indices")
    if (
        idx is not None
        and idx.ndim == 1
        and idx.dtype.kind in "iu"
        and idx.size
        and (idx[0] < 0 or np.any(np.diff(idx) <= 0))
    ):
        problems.append(f"{where}: frame_indices must be non-negative and strictly increasing")
    ts = arrays.get("timestamps_s")
    if (
        ts is not None
        and ts.ndim == 1
        and ts.dtype.kind == "f"
        and ts.size
        and (not np.all(np.isfinite(ts)) or ts[0] < 0 or np.any(np.diff(ts) < 0))
    ):
        problems.append(f"{where}: timestamps_s must be finite, non-negative, non-decreasing")
    return problems


def encode_npz(
    identity: RunIdentity,
    *,
    component: str,
    schema_version: int,
    producer_version: str,
    model: str | None,
    status: NpzStatus,
    empty_reason: EmptyReason | None,
    arrays: Mapping[str, np.ndarray],
    specs: Mapping[str, ArraySpec],
    created_at: datetime,
) -> bytes:
    """The bytes of one component's artifact; any contract breach → :class:`ContractViolation`.

    ``ok`` results are checked against ``specs`` (keys, dtypes, shapes); ``empty`` results must
    carry no arrays. Object arrays and the reserved key ``meta`` are refused.
    """
    where = f"{component}.npz"
    try:
        meta = NpzMeta(
            platform_id=identity.platform_id,
            video_id=identity.video_id,
            run_id=identity.run_id,
            config_hash=identity.config_hash,
            sampling_policy_version=identity.sampling_policy_version,
            dataprocessor_version=identity.dataprocessor_version,
            component=component,
            schema_version=schema_version,
            producer_version=producer_version,
            model=model,
            status=status,
            empty_reason=empty_reason,
            created_at=created_at,
        )
    except ValidationError as exc:
        raise _violation(where, _meta_errors(exc, where)) from None

    problems: list[str] = []
    for key, arr in arrays.items():
        if key == META_KEY:
            problems.append(f"{where}: {META_KEY!r} is reserved for the artifact's meta")
        elif not _KEY_RE.fullmatch(key):
            problems.append(f"{where}: key {key!r} is not a plain identifier")
        if not isinstance(arr, np.ndarray):
            problems.append(f"{where}: key {key!r} is a {type(arr).__name__}, not a numpy array")
        elif arr.dtype.hasobject:
            problems.append(f"{where}: key {key!r} has an object dtype (not loadable safely)")
    if problems:
        raise _violation(where, problems)
    if status == "ok":
        problems = check_arrays(specs, arrays, where=where) + _frame_problems(arrays, where)
    elif arrays:
        problems = [f"{where}: an empty result holds only meta, got keys {sorted(arrays)}"]
    if problems:
        raise _violation(where, problems)

    members = {META_KEY: np.array(canonical_json(meta.model_dump(mode="json")).decode("utf-8"))}
    # asarray, not ascontiguousarray: the latter turns 0-d arrays into 1-d ones.
    members.update({key: np.asarray(arrays[key], order="C") for key in sorted(arrays)})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for key, arr in members.items():
            npy = io.BytesIO()
            np.lib.format.write_array(npy, arr, allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, whatever the writing platform
            info.external_attr = 0o644 << 16
            zf.writestr(info, npy.getvalue(), compresslevel=6)
    return buf.getvalue()


def encode_result(
    identity: RunIdentity,
    component: type[Component],
    result: ComponentResult,
    *,
    model: str | None,
    created_at: datetime,
) -> bytes:
    """:func:`encode_npz` for a component's :class:`ComponentResult`, specs from its class."""
    return encode_npz(
        identity,
        component=component.NAME,
        schema_version=component.SCHEMA_VERSION,
        producer_version=component.PRODUCER_VERSION,
        model=model,
        status="ok" if result.empty_reason is None else "empty",
        empty_reason=result.empty_reason,
        arrays=result.arrays,
        specs=component.outputs(),
        created_at=created_at,
    )


def decode_npz(data: bytes, *, where: str = "npz") -> NpzArtifact:
    """Read an artifact with ``allow_pickle=False``; unreadable → :class:`ContractViolation`."""
    arrays: dict[str, np.ndarray] = {}
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise _violation(where, [f"{where}: a single .npy array, not an NPZ archive"])
        with loaded as npz:
            for key in npz.files:
                try:
                    value = npz[key]
                except ValueError as exc:  # object arrays refuse to load without pickle
                    problem = f"{where}: key {key!r} cannot be read: {exc}"
                    raise _violation(where, [problem]) from None
                if not isinstance(value, np.ndarray):
                    raise _violation(where, [f"{where}: member {key!r} is not a .npy array"])
                arrays[key] = value
    except ContractViolation:
        raise
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError) as exc:
        raise _violation(where, [f"{where}: not a readable NPZ archive ({exc})"]) from None

    raw = arrays.pop(META_KEY, None)
    if raw is None:
        raise _violation(where, [f"{where}: no {META_KEY!r} key"])
    if raw.ndim != 0 or raw.dtype.kind != "U":
        problem = f"{where}: {META_KEY!r} must be a 0-d unicode array, got {raw.dtype} {raw.shape}"
        raise _violation(where, [problem])
    try:
        meta = NpzMeta.model_validate(json.loads(str(raw[()])))
    except json.JSONDecodeError as exc:
        raise _violation(where, [f"{where}: meta is not JSON ({exc})"]) from None
    except ValidationError as exc:
        raise _violation(where, _meta_errors(exc, where)) from None
    return NpzArtifact(meta=meta, arrays=arrays)


def validate_npz(
    data: bytes,
    schema: ComponentSchema,
    *,
    expected_identity: RunIdentity | None = None,
    where: str = "npz",
) -> list[str]:
    """Every problem of an artifact against its component schema, one line each.

    With ``expected_identity``, each identity field of ``meta`` that differs is named.
    """
    try:
        artifact = decode_npz(data, where=where)
    except ContractViolation as exc:
        return list(exc.details.get("problems") or [exc.message])
    return check_artifact(artifact, schema, expected_identity=expected_identity, where=where)


def check_artifact(
    artifact: NpzArtifact,
    schema: ComponentSchema,
    *,
    expected_identity: RunIdentity | None = None,
    where: str = "npz",
) -> list[str]:
    """:func:`validate_npz` for an artifact that is already decoded."""
    meta = artifact.meta
    problems: list[str] = []
    if meta.component != schema.name:
        problems.append(f"{where}: meta names component {meta.component!r}, not {schema.name!r}")
    if meta.schema_version != schema.schema_version:
        problems.append(
            f"{where}: schema_version {meta.schema_version} but the {schema.name} schema is "
            f"version {schema.schema_version}"
        )
    if meta.status == "ok":
        problems += check_arrays(schema.specs, artifact.arrays, where=where)
        problems += _frame_problems(artifact.arrays, where)
    elif artifact.arrays:
        problems.append(
            f"{where}: status empty ({meta.empty_reason}) but holds keys {sorted(artifact.arrays)}"
        )
    if expected_identity is not None:
        for name in _IDENTITY_FIELDS:
            got, want = getattr(meta, name), getattr(expected_identity, name)
            if got != want:
                problems.append(f"{where}: meta {name} {got!r} differs from the run's {want!r}")
    return problems


__all__ = [
    "META_KEY",
    "NpzArtifact",
    "NpzMeta",
    "check_artifact",
    "decode_npz",
    "encode_npz",
    "encode_result",
    "validate_npz",
]
