"""``manifest.json``: the per-run record that the database can be rebuilt from (DESIGN.md §3).

One manifest per run at ``result_store/<platform_id>/<video_id>/<run_id>/manifest.json``, rewritten
atomically after every stage through the :class:`~trendflow.storage.base.ResultStore` (temp +
rename locally, one PUT on S3). Three sections:

- ``run``: the run identity, who asked for it with which profile (its id and the pinned
  normalized config), where the video came from (the ``runs.source`` JSON), the run status and
  error (with its details), warnings, the resolved model mapping with its ``model_signature``,
  and timestamps;
- ``video``: what was analysed (probed facts and every preprocessing step), ``None`` until the
  Segmenter has probed the file;
- ``components``: one :class:`ComponentRecord` per enabled component, with its observability
  fields and its artifacts (key, size, sha256).

:func:`manifest_json_schema` is the JSON Schema of this model; ``schemas/manifest.schema.json`` is
its output (``trendflow schemas generate``) and a test fails when the two differ.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)

from trendflow.contracts.empty import EmptyReason
from trendflow.contracts.identity import (
    PlatformId,
    RunId,
    RunIdentity,
    Sha256Hex,
    Version,
    VideoId,
)
from trendflow.contracts.profile import COMPONENT_NAME_RE, ModelRef, model_signature
from trendflow.errors import ContractViolation, TrendflowError

if TYPE_CHECKING:
    from trendflow.pipeline.types import VideoInfo
    from trendflow.storage.base import ObjectInfo, ResultStore

MANIFEST_VERSION: Final = 1
MANIFEST_SCHEMA_ID = f"trendflow/manifest/v{MANIFEST_VERSION}"

RunStatus = Literal["queued", "running", "ok", "error", "cancelled"]
ComponentStatus = Literal["pending", "running", "ok", "empty", "error"]
FINAL_RUN_STATUSES: frozenset[str] = frozenset({"ok", "error", "cancelled"})


def utc_now() -> datetime:
    """The current time, timezone-aware UTC, to the millisecond (what manifests record)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class _Model(BaseModel):
    # No validate_assignment: a record passes through inconsistent states while a stage updates
    # several fields; Manifest.to_json_bytes validates the whole document before it is written.
    model_config = ConfigDict(extra="forbid")


class ErrorInfo(_Model):
    """Why a run or a component failed: the stable error ``code`` and a readable message."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    message: str


class RunError(ErrorInfo):
    """Why a run failed: what :meth:`TrendflowError.to_dict` gives, as ``runs.error`` holds it
    — the code, the message and the error's JSON ``details`` (``{}`` in manifests written
    before the field existed)."""

    details: dict[str, JsonValue] = Field(default_factory=dict)

    @classmethod
    def of(cls, error: TrendflowError) -> RunError:
        """From the error that ended the run (its details as the database's JSON codec
        writes them: JSON values, anything else as its ``str``)."""
        details = json.loads(json.dumps(error.details, default=str))
        return cls(code=error.code, message=error.message, details=details)

    @classmethod
    def from_row(cls, error: Mapping[str, Any]) -> RunError:
        """From a ``runs.error`` JSON object."""
        return cls(code=str(error.get("code")), message=str(error.get("message", "")),
                   details=dict(error.get("details") or {}))


class ArtifactRecord(_Model):
    """One stored file of a component: its store key, size in bytes and sha256 hex."""

    key: str
    size: int = Field(ge=0)
    sha256: Sha256Hex

    @classmethod
    def from_info(cls, info: ObjectInfo) -> ArtifactRecord:
        """From what the store returned after a write (which always carries the sha256)."""
        if info.sha256 is None:
            raise ContractViolation(f"store returned no sha256 for {info.key!r}", key=info.key)
        return cls(key=info.key, size=info.size, sha256=info.sha256)


class ComponentRecord(_Model):
    """One component of a run: status, timings, resources, versions, result and artifacts."""

    status: ComponentStatus = "pending"
    required: bool = True
    schema_version: int = Field(ge=1)
    producer_version: str = Field(min_length=1)
    model: str | None = None  # resolved "name:version" for model-backed components
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    duration_ms: int | None = Field(default=None, ge=0)
    device_used: str | None = None  # "cpu", "cuda:0", "triton:gpu" …
    peak_ram_mb: float | None = Field(default=None, ge=0)
    gpu_memory_mb: float | None = Field(default=None, ge=0)
    empty_reason: EmptyReason | None = None
    error: ErrorInfo | None = None
    notes: list[str] = Field(default_factory=list)
    artifacts: list[ArtifactRecord] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.status == "empty") != (self.empty_reason is not None):
            raise ValueError("empty_reason is set exactly when status is 'empty'")
        if (self.status == "error") != (self.error is not None):
            raise ValueError("error is set exactly when status is 'error'")
        if self.status in ("ok", "empty", "error") and self.finished_at is None:
            raise ValueError(f"a component with status {self.status!r} needs finished_at")
        if self.status in ("ok", "empty") and not self.artifacts:
            raise ValueError(f"a component with status {self.status!r} lists its artifact")
        if self.status == "pending" and (self.started_at or self.finished_at or self.artifacts):
            raise ValueError("a pending component has no timestamps and no artifacts")
        return self

    @classmethod
    def pending(
        cls,
        *,
        schema_version: int,
        producer_version: str,
        required: bool = True,
        model: str | None = None,
    ) -> ComponentRecord:
        """A component that has not started yet."""
        return cls(
            schema_version=schema_version,
            producer_version=producer_version,
            required=required,
            model=model,
        )


class PreprocessingRecord(_Model):
    """One preprocessing step (mirrors :class:`trendflow.pipeline.types.PreprocessingStep`)."""

    kind: Literal["remux", "repair_reencode", "downscale", "rotate", "vfr_normalize", "other"]
    detail: str
    params: dict[str, JsonValue] = Field(default_factory=dict)


class VideoSection(_Model):
    """The probed facts of the analysed video.

    Mirrors :class:`trendflow.pipeline.types.VideoInfo`.
    """

    duration_s: float = Field(ge=0)
    fps: float = Field(gt=0)
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    has_audio: bool
    video_codec: str
    audio_codec: str | None
    container: str
    rotation: int = 0
    variable_frame_rate: bool = False
    source: Literal["youtube", "upload", "url"]
    preprocessing: list[PreprocessingRecord] = Field(default_factory=list)

    @classmethod
    def from_info(cls, info: VideoInfo) -> VideoSection:
        """From the Segmenter's probe result."""
        return cls(
            duration_s=info.duration_s,
            fps=info.fps,
            width=info.width,
            height=info.height,
            has_audio=info.has_audio,
            video_codec=info.video_codec,
            audio_codec=info.audio_codec,
            container=info.container,
            rotation=info.rotation,
            variable_frame_rate=info.variable_frame_rate,
            source=info.source,
            preprocessing=[
                PreprocessingRecord(kind=s.kind, detail=s.detail, params=dict(s.params))
                for s in info.preprocessing
            ],
        )


class RunSection(_Model):
    """The run: identity, owner, profile, status, warnings, pinned models, timestamps."""

    platform_id: PlatformId
    video_id: VideoId
    run_id: RunId
    config_hash: Sha256Hex
    sampling_policy_version: Version
    dataprocessor_version: Version
    profile_id: str | None = None
    user_id: str | None = None
    # The pinned normalized profile and the ``runs.source`` JSON, as the index holds them (so a
    # rebuilt index has them); None in manifests written before they were recorded.
    profile_config: dict[str, JsonValue] | None = None
    source: dict[str, JsonValue] | None = None
    status: RunStatus = "queued"
    error: RunError | None = None
    warnings: list[str] = Field(default_factory=list)
    model_mapping: dict[str, ModelRef] = Field(default_factory=dict)
    model_signature: Sha256Hex
    created_at: AwareDatetime
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        try:
            self.identity  # noqa: B018 - validates the six fields with RunIdentity's rules
        except ValidationError as exc:
            raise ValueError("; ".join(e["msg"] for e in exc.errors())) from None
        if self.model_signature != model_signature(self.model_mapping):
            raise ValueError("model_signature does not match model_mapping")
        if (self.status == "error") != (self.error is not None):
            raise ValueError("run error is set exactly when status is 'error'")
        if self.status in FINAL_RUN_STATUSES and self.finished_at is None:
            raise ValueError(f"a run with status {self.status!r} needs finished_at")
        return self

    @property
    def identity(self) -> RunIdentity:
        return RunIdentity(
            platform_id=self.platform_id,
            video_id=self.video_id,
            run_id=self.run_id,
            config_hash=self.config_hash,
            sampling_policy_version=self.sampling_policy_version,
            dataprocessor_version=self.dataprocessor_version,
        )


class Manifest(_Model):
    """The whole ``manifest.json``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    manifest_version: Literal[1] = MANIFEST_VERSION
    run: RunSection
    video: VideoSection | None = None
    components: dict[str, ComponentRecord] = Field(default_factory=dict)

    @field_validator("components")
    @classmethod
    def _names(cls, value: dict[str, ComponentRecord]) -> dict[str, ComponentRecord]:
        bad = sorted(name for name in value if not COMPONENT_NAME_RE.fullmatch(name))
        if bad:
            raise ValueError(f"invalid component names {bad}")
        return value

    @model_validator(mode="after")
    def _mapping_names(self) -> Self:
        unknown = sorted(set(self.run.model_mapping) - set(self.components))
        if unknown:
            raise ValueError(f"model_mapping names components the run does not have: {unknown}")
        return self

    @classmethod
    def new(
        cls,
        identity: RunIdentity,
        *,
        components: Mapping[str, ComponentRecord],
        model_mapping: Mapping[str, ModelRef] | None = None,
        profile_id: str | None = None,
        user_id: str | None = None,
        profile_config: Mapping[str, Any] | None = None,
        source: Mapping[str, Any] | None = None,
        created_at: datetime | None = None,
    ) -> Manifest:
        """The manifest of a freshly queued run; invalid input → :class:`ContractViolation`."""
        mapping = dict(model_mapping or {})
        try:
            return cls(
                run=RunSection(
                    platform_id=identity.platform_id,
                    video_id=identity.video_id,
                    run_id=identity.run_id,
                    config_hash=identity.config_hash,
                    sampling_policy_version=identity.sampling_policy_version,
                    dataprocessor_version=identity.dataprocessor_version,
                    profile_id=profile_id,
                    user_id=user_id,
                    profile_config=None if profile_config is None else dict(profile_config),
                    source=None if source is None else dict(source),
                    model_mapping=mapping,
                    model_signature=model_signature(mapping),
                    created_at=created_at or utc_now(),
                ),
                components=dict(components),
            )
        except ValidationError as exc:
            raise _violation(exc, "manifest") from None

    @property
    def identity(self) -> RunIdentity:
        return self.run.identity

    def artifact_keys(self) -> dict[str, str]:
        """Every listed artifact key → the component that lists it."""
        return {a.key: name for name, rec in self.components.items() for a in rec.artifacts}

    def to_json_bytes(self) -> bytes:
        """Deterministic UTF-8 JSON: sorted keys, 2-space indent, trailing newline.

        The whole document is validated first, so an inconsistent manifest (e.g. a component
        set to ``empty`` without its ``empty_reason``) is refused with
        :class:`ContractViolation` instead of being written.
        """
        data = self.model_dump(mode="json")
        try:
            type(self).model_validate(data)
        except ValidationError as exc:
            raise _violation(exc, "manifest") from None
        text = json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False)
        return (text + "\n").encode("utf-8")

    @classmethod
    def from_json_bytes(cls, data: bytes, *, where: str = "manifest.json") -> Manifest:
        """Parse and validate; any problem → :class:`ContractViolation` listing every error."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise _violation(exc, where) from None


def _violation(exc: ValidationError, where: str) -> ContractViolation:
    problems = [
        f"{where}: {'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
        for err in exc.errors()
    ]
    return ContractViolation("; ".join(problems), problems=problems)


def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``manifest.json``, as written to the schemas dir."""
    schema = Manifest.model_json_schema(mode="validation")
    return {"$schema": schema.pop("$schema"), "$id": MANIFEST_SCHEMA_ID, **schema}


async def save_manifest(store: ResultStore, manifest: Manifest) -> ObjectInfo:
    """Write the manifest to its key (atomic in every store); returns what was written."""
    from trendflow.contracts.keys import manifest_key

    run = manifest.run
    key = manifest_key(run.platform_id, run.video_id, run.run_id)
    return await store.put_bytes(key, manifest.to_json_bytes())


async def load_manifest(store: ResultStore, key: str) -> Manifest:
    """Read and validate the manifest at ``key``; the identity must match the key's path."""
    from trendflow.contracts.keys import parse_run_key

    parsed = parse_run_key(key)
    if not parsed.is_manifest:
        raise ContractViolation(f"{key!r} is not a manifest key", key=key)
    manifest = Manifest.from_json_bytes(await store.get_bytes(key), where=key)
    run = manifest.run
    found = (run.platform_id, run.video_id, run.run_id)
    expected = (parsed.platform_id, parsed.video_id, parsed.run_id)
    if found != expected:
        raise ContractViolation(
            f"{key}: manifest identity {'/'.join(found)} does not match its key",
            key=key,
        )
    return manifest


__all__ = [
    "ArtifactRecord",
    "ComponentRecord",
    "ErrorInfo",
    "MANIFEST_SCHEMA_ID",
    "Manifest",
    "PreprocessingRecord",
    "RunError",
    "RunSection",
    "VideoSection",
    "load_manifest",
    "manifest_json_schema",
    "save_manifest",
    "utc_now",
]
