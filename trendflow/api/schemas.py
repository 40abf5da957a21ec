"""Request and response models of the HTTP API (what ``/docs`` shows, with examples)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trendflow.contracts.profile import COMPONENT_NAME_RE
from trendflow.db.repositories import profiles as profiles_repo
from trendflow.db.repositories.components import COMPONENT_STATUSES
from trendflow.db.repositories.runs import RUN_STATUSES
from trendflow.triton.mapping import parse_ref

PROFILE_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
UPLOAD_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ErrorOut(BaseModel):
    """Every error: a stable ``code``, a human ``message`` and machine ``details``."""

    code: str = Field(examples=["run_not_found"])
    message: str = Field(examples=["run 9b1d… does not exist"])
    details: dict[str, Any] = Field(default_factory=dict)


class FieldProblem(BaseModel):
    field: str = Field(examples=["body.profile_id"], description="dotted location of the value")
    problem: str = Field(examples=["Field required"])


class InvalidInputDetails(BaseModel):
    model_config = ConfigDict(extra="allow")

    errors: list[FieldProblem] = Field(default_factory=list)


class InvalidInputOut(BaseModel):
    """``400``: the request is invalid (the shape of :class:`ErrorOut`); for ``invalid_input``
    and ``malformed_json``, ``details.errors`` lists each problem with its field."""

    code: str = Field(examples=["invalid_input"])
    message: str = Field(examples=["invalid request: query.ledger_limit: Input should be …"])
    details: InvalidInputDetails = Field(default_factory=InvalidInputDetails)


class VideoMetaIn(_In):
    """What the user says about an uploaded video (YouTube runs take it from YouTube)."""

    title: str = Field(default="", max_length=200, examples=["My cooking short"])
    description: str = Field(default="", max_length=5000)
    tags: list[str] = Field(default_factory=list, max_length=100)
    channel: str | None = Field(default=None, max_length=200)
    published_at: datetime | None = None
    language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
    # The forecast's inputs an uploader can type: YouTube's category number and channel size.
    category_id: int | None = Field(default=None, ge=1, le=100)
    channel_follower_count: int | None = Field(default=None, ge=0, le=10**10)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            if not tag.strip() or len(tag) > 100:
                raise ValueError("each tag is 1-100 characters")
        return [t.strip() for t in value]

    @field_validator("published_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("published_at needs a time zone (e.g. 2024-05-01T12:00:00Z)")
        return value


class UploadOut(BaseModel):
    """An accepted upload: use ``upload_id`` in ``POST /api/runs``."""

    upload_id: str
    video_id: str = Field(description="'up-' + 16 hex of the file's sha256 (the cache key)")
    filename: str
    size_bytes: int
    sha256: str
    duration_s: float
    width: int
    height: int
    fps: float
    has_audio: bool
    meta: VideoMetaIn
    created_at: datetime


class ComponentIn(_In):
    """One component of a profile (saved or inline)."""

    name: str = Field(examples=["shot_detection"])
    params: dict[str, Any] = Field(default_factory=dict)
    required: bool = True
    enabled: bool = True
    model: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.-]+:[0-9]+$", examples=["face_detector:1"],
        description="the model a model-backed component runs (name:version); none: this "
                    "deployment's default for the component, pinned when the profile is saved")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not COMPONENT_NAME_RE.fullmatch(value):
            raise ValueError("a component name is a-z 0-9 _ starting with a letter")
        return value

    def to_profile_component(self) -> profiles_repo.ProfileComponent:
        """The component as the profiles repository stores it."""
        models: tuple[profiles_repo.ModelMapping, ...] = ()
        if self.model is not None:
            models = (profiles_repo.ModelMapping(*parse_ref(self.model)),)
        return profiles_repo.ProfileComponent(component_name=self.name, required=self.required,
                                              enabled=self.enabled, params=self.params,
                                              models=models)

    @classmethod
    def of(cls, comp: profiles_repo.ProfileComponent) -> ComponentIn:
        """A stored component as the API shows it (its pinned model included)."""
        return cls(name=comp.component_name, params=comp.params, required=comp.required,
                   enabled=comp.enabled, model=comp.models[0].ref if comp.models else None)


class ProfileIn(_In):
    """A user's own profile (create/replace). Built-in profiles are read-only."""

    profile_id: str = Field(pattern=PROFILE_ID_PATTERN, examples=["my-fast"])
    name: str = Field(min_length=1, max_length=200, examples=["Fast, no audio"])
    description: str = Field(default="", max_length=2000)
    components: list[ComponentIn] = Field(min_length=1, max_length=64)
    sampling: dict[str, Any] = Field(default_factory=dict)
    render: dict[str, Any] = Field(default_factory=lambda: {"engine": "template"})
    cache_ttl_days: int = Field(default=3, ge=0, le=365)


class InlineProfileIn(_In):
    """A profile given inside a run request (stored as the user's private profile)."""

    components: list[ComponentIn] = Field(min_length=1, max_length=64)
    sampling: dict[str, Any] = Field(default_factory=dict)
    render: dict[str, Any] = Field(default_factory=lambda: {"engine": "template"})


class ProfileOut(BaseModel):
    profile_id: str
    name: str
    description: str
    builtin: bool
    owned: bool
    cache_ttl_days: int
    components: list[ComponentIn]
    sampling: dict[str, Any]
    render: dict[str, Any]


class _RunRequest(_In):
    youtube_url: str | None = Field(
        default=None, max_length=2000, examples=["https://www.youtube.com/watch?v=dQw4w9WgXcQ"]
    )
    upload_id: str | None = Field(default=None, pattern=UPLOAD_ID_PATTERN)
    profile_id: str | None = Field(default=None, pattern=PROFILE_ID_PATTERN, examples=["fast"])
    profile: InlineProfileIn | None = None
    cache_ttl_days: int | None = Field(
        default=None, ge=0, le=365,
        description="reuse a successful run this recent (0: never); default: your account's "
        "setting",
    )

    @model_validator(mode="after")
    def _one_of(self) -> Any:
        if (self.youtube_url is None) == (self.upload_id is None):
            raise ValueError("give exactly one of youtube_url or upload_id")
        if (self.profile_id is None) == (self.profile is None):
            raise ValueError("give exactly one of profile_id or profile")
        return self


# Video facts a client once declared for a YouTube URL. The price now comes from the video
# itself (YouTube's metadata, an upload's probe), so these are refused by name.
VIDEO_FACT_FIELDS = ("duration_s", "width", "height")


class _RunFields(_RunRequest):
    """Every field of a run request: ``POST /api/estimate`` takes exactly what ``POST
    /api/runs`` takes (a client can price the very body it will send) and checks it alike.

    The video's duration and frame size are not fields: the API reads them from YouTube's
    metadata or the upload's probe, and a request that sends ``duration_s``, ``width`` or
    ``height`` is refused (``400 invalid_input``) rather than priced for a claim."""

    @model_validator(mode="before")
    @classmethod
    def _no_declared_facts(cls, data: Any) -> Any:
        if isinstance(data, dict):
            sent = [name for name in VIDEO_FACT_FIELDS if name in data]
            if sent:
                raise ValueError(
                    f"{', '.join(sent)} not accepted: the price comes from the video itself "
                    "(YouTube's metadata, or the upload's probe), not from the request"
                )
        return data

    callback_url: str | None = Field(default=None, max_length=2000)
    max_total: Decimal | None = Field(
        default=None, ge=0, description="refuse (409 price_changed) if the price is higher"
    )


class EstimateIn(_RunFields):
    """What a run would cost and take, before it starts (nothing is reserved): the body of
    ``POST /api/runs``, answered as creation would answer it but without creating anything."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"upload_id": str(uuid.UUID(int=4)), "profile_id": "fast"}]}
    )


class PricedVideoOut(BaseModel):
    """The video facts a price is computed from: YouTube's metadata for a YouTube URL (the
    format the run downloads), the probe for an upload. A run whose fetched video is longer or
    larger is refused (``video_exceeds_quote``), never analysed for this price."""

    duration_s: float = Field(examples=[212.0])
    width: int = Field(examples=[1920])
    height: int = Field(examples=[1080])


class EstimateOut(BaseModel):
    platform_id: Literal["youtube", "upload"] = Field(description="where the video comes from")
    video_id: str = Field(
        description="the canonical id the source maps to (a YouTube URL's 11-character id in "
        "any of its forms, an upload's 'up-…'): runs of the same id share the cache",
        examples=["dQw4w9WgXcQ"],
    )
    source_url: str | None = Field(
        description="the canonical watch URL that is fetched (YouTube); null for an upload",
        examples=["https://www.youtube.com/watch?v=dQw4w9WgXcQ"],
    )
    video: PricedVideoOut = Field(description="what the price is computed from")
    currency: Literal["credits"] = "credits"
    total: Decimal
    eta_s: float | None
    components: dict[str, Decimal]
    cached: bool = Field(description="a cached result would be reused (no analysis needed)")
    available: Decimal
    lines: list[dict[str, Any]] = Field(description="per-component price breakdown")


class RunIn(_RunFields):
    """Start an analysis. Send ``Idempotency-Key`` to make retries safe."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "youtube_url": "https://youtu.be/dQw4w9WgXcQ",
                    "profile_id": "fast",
                    "cache_ttl_days": 3,
                    "callback_url": "https://example.com/hooks/trendflow",
                }
            ]
        }
    )


class ComponentStatusOut(BaseModel):
    name: str
    status: str = Field(json_schema_extra={"enum": list(COMPONENT_STATUSES)})
    required: bool
    progress: float = Field(ge=0, le=1)
    duration_ms: int | None = None
    empty_reason: str | None = None
    error: dict[str, Any] | None = None


class RunOut(BaseModel):
    run_id: uuid.UUID
    status: str = Field(json_schema_extra={"enum": list(RUN_STATUSES)})
    stage: str | None
    platform_id: str
    video_id: str
    profile_id: str
    config_hash: str
    model_signature: str
    reused_from_run_id: uuid.UUID | None
    callback_url: str | None
    error: dict[str, Any] | None
    warnings: list[Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunCreatedOut(RunOut):
    created: bool = Field(description="false: an Idempotency-Key replay of an earlier request")
    estimate: EstimateOut | None = None


class RunPage(BaseModel):
    items: list[RunOut]
    next_before: datetime | None = Field(description="pass as ?before= for the next page")


class RunStatusOut(BaseModel):
    run_id: uuid.UUID
    status: str = Field(json_schema_extra={"enum": list(RUN_STATUSES)})
    stage: str | None
    progress: float = Field(ge=0, le=1)
    eta_s: float | None
    components: list[ComponentStatusOut]
    error: dict[str, Any] | None
    reused_from_run_id: uuid.UUID | None
    updated_at: datetime


class NpzKeyOut(BaseModel):
    dtype: str = Field(examples=["float64"])
    shape: list[int]
    unit: str | None
    description: str | None
    value: Any = Field(description="the array as JSON (NaN → null)")
    downsampled: dict[str, int | str] | None = Field(
        default=None,
        description="a long series is shown in buckets: ``from`` rows → ``to`` by ``method`` "
        "(``mean``/``first``); ``rows_of`` names the bucketed dimension a row index points into",
    )


class ComponentDataOut(BaseModel):
    """One component's NPZ as JSON: every key with dtype, shape, unit, description, value."""

    component: str
    status: Literal["ok", "empty"] | None
    empty_reason: str | None
    schema_version: int | None
    meta: dict[str, Any]
    keys: dict[str, NpzKeyOut]


class RunResultOut(BaseModel):
    run: RunOut
    manifest: dict[str, Any]
    components: dict[str, ComponentDataOut] = Field(
        description="presentation JSON per component: every NPZ key with dtype, shape, unit"
    )


class ReportFindingOut(BaseModel):
    component: str
    key: str
    value: float | int | bool | str
    unit: str | None


class TemplateReportOut(BaseModel):
    """The data-driven text of a ``render.engine: template`` profile (no LLM)."""

    run_id: uuid.UUID
    engine: Literal["template"]
    template_version: str
    sentences: list[str]
    text: str
    findings: list[ReportFindingOut]


class ReportSectionOut(BaseModel):
    id: str
    title: str
    sentences: list[str]


class LlmUsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class LlmReportOut(BaseModel):
    """The LLM's text of the run's brief (``render.engine: llm``), validated against it."""

    model_config = ConfigDict(protected_namespaces=())

    run_id: uuid.UUID
    engine: Literal["llm"]
    locale: Literal["ru", "en"]
    llm_model: str
    prompt_version: str
    prompt_hash: str
    sections: list[ReportSectionOut]
    sentences: list[str]
    text: str
    recommendations: list[dict[str, Any]]
    facts: list[dict[str, Any]]
    usage: LlmUsageOut
    attempts: int
    seconds: float
    cached: bool = Field(description="served from the render cache (rendered before)")


ReportOut = Annotated[TemplateReportOut | LlmReportOut, Field(discriminator="engine")]


class QuantilesOut(BaseModel):
    p10: float
    p50: float
    p90: float


class ContributionOut(BaseModel):
    feature: str
    log1p_views: float
    log1p_likes: float


class WhatIfOut(BaseModel):
    """One what-if: the feature moved from ``current`` to ``target`` and the views it gives
    (the what-if's own description fields are kept as they are)."""

    model_config = ConfigDict(extra="allow")

    current: float
    target: float
    views: QuantilesOut
    change_p50_views: float
    change_p50_ratio: float | None


class ForecastOut(BaseModel):
    """Views and likes at the horizon (p10/p50/p90), their display strings, the features that
    moved the forecast most and the what-if effects."""

    model_config = ConfigDict(protected_namespaces=())

    model: str | None
    horizon_days: float
    age_modelled: bool
    views: QuantilesOut
    likes: QuantilesOut
    display: dict[str, str]
    contributions: list[ContributionOut]
    whatifs: list[WhatIfOut]


class LedgerEntryOut(BaseModel):
    kind: str
    amount: Decimal
    balance_after: Decimal
    reserved_after: Decimal
    run_id: uuid.UUID | None
    component_name: str | None
    note: str
    created_at: datetime


class MeOut(BaseModel):
    user_id: uuid.UUID
    email: str
    display_name: str | None
    role: str
    subscription: str
    balance: Decimal
    reserved: Decimal
    available: Decimal
    webhook_secret: str | None = Field(
        description="HMAC-SHA256 key that signs your webhooks (X-TrendFlow-Signature)"
    )
    ledger: list[LedgerEntryOut]


class UserSettingsOut(BaseModel):
    """Account settings: the cache window and the written analysis' length and language."""

    cache_ttl_days: int = Field(
        description="a video you analysed this recently is served from the cache (0: never)"
    )
    report_sentences_min: int = Field(description="the analysis' shortest length, sentences")
    report_sentences_max: int = Field(description="the analysis' longest length, sentences")
    report_locale: Literal["ru", "en"] = Field(description="the analysis' language")


class UserSettingsPatch(_In):
    """Change some settings; fields left out stay as they are (min ≤ max is checked)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"cache_ttl_days": 7, "report_sentences_min": 30,
                                         "report_sentences_max": 40, "report_locale": "en"}]}
    )

    cache_ttl_days: int | None = Field(default=None, ge=0, le=365)
    report_sentences_min: int | None = Field(default=None, ge=20, le=100)
    report_sentences_max: int | None = Field(default=None, ge=20, le=100)
    report_locale: Literal["ru", "en"] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Any:
        low, high = self.report_sentences_min, self.report_sentences_max
        if low is not None and high is not None and low > high:
            raise ValueError("report_sentences_min must not exceed report_sentences_max")
        return self


class UserIn(_In):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    role: Literal["user", "admin"] = "user"
    subscription: Literal["free", "premium"] = "free"
    display_name: str | None = Field(default=None, max_length=200)


class UserOut(BaseModel):
    user_id: uuid.UUID
    email: str
    display_name: str | None
    role: str
    subscription: str
    balance: Decimal
    reserved: Decimal
    created_at: datetime


class TokenIn(_In):
    name: str = Field(default="", max_length=100)
    expires_at: datetime | None = None


class TokenOut(BaseModel):
    token_id: uuid.UUID
    token: str = Field(description="shown once; only its hash is stored")
    expires_at: datetime | None


class TopUpIn(_In):
    amount: Decimal = Field(gt=0, le=Decimal(10) ** 9, decimal_places=6)
    note: str = Field(min_length=1, max_length=500, description="why (kept in the ledger)")


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    checks: dict[str, dict[str, Any]]
