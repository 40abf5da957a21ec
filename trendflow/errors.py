"""The one error tree of TrendFlow.

Every error a user or an operator can see is a :class:`TrendflowError` with a stable ``code``
(snake_case, never renamed once released) and an HTTP ``status``. Errors cross Ray actor
boundaries, so every class pickles with its message and details intact.

::

    TrendflowError (500 internal_error)
    ├── ConfigError (500 config_error)                  settings / profile that cannot work
    │   ├── RunUnschedulable (500 run_unschedulable)    needs more than the idle cluster has
    │   ├── ModelServingDisabled (422 model_serving_disabled) no model server in this deployment
    │   └── LlmNotConfigured (422 llm_not_configured)  engine "llm" but no LLM gateway set up
    ├── InputError (400 invalid_input)                  the request itself is wrong
    │   ├── InvalidVideoUrl (400 invalid_video_url)
    │   ├── InvalidIdentifier (400 invalid_identifier)
    │   ├── InvalidProfile (400 invalid_profile)
    │   ├── UnsafeStorageKey (400 unsafe_storage_key)
    │   ├── InvalidCallbackUrl (400 invalid_callback_url)  not http(s), or a private address
    │   └── UploadTooLarge (413 upload_too_large)
    ├── AuthError (401 unauthorized)                    no valid bearer token
    │   └── Forbidden (403 forbidden)                   authenticated, but not allowed
    ├── MediaError (422 media_error)                    the video cannot be analysed
    │   ├── UnsupportedMedia (415 unsupported_media)
    │   ├── VideoTooShort (422 video_too_short)
    │   ├── VideoTooLong (422 video_too_long)
    │   ├── VideoFileCorrupted (422 video_file_corrupted)
    │   └── DownloadFailed (502 download_failed)
    │       └── VideoUnavailable (404 video_unavailable)
    ├── NotFound (404 not_found)
    │   ├── RunNotFound (404 run_not_found)
    │   ├── ArtifactNotFound (404 artifact_not_found)
    │   ├── ProfileNotFound (404 profile_not_found)
    │   ├── UserNotFound (404 user_not_found)
    │   ├── ComponentNotFound (404 component_not_found)
    │   ├── UploadNotFound (404 upload_not_found)
    │   ├── FramesExpired (410 frames_expired)         the run's frames are no longer kept
    │   └── EndpointDisabled (404 endpoint_disabled)   a dev-only route that is switched off
    ├── Conflict (409 conflict)
    │   ├── InvalidStatusTransition (409 invalid_status_transition)
    │   ├── IdempotencyConflict (409 idempotency_key_reused)  same key, different request
    │   ├── RunNotReady (409 run_not_ready)             no results yet (queued or starting)
    │   ├── PriceChanged (409 price_changed)            the price rose above the accepted total
    │   └── VideoExceedsQuote (409 video_exceeds_quote) the video fetched exceeds what was priced
    ├── PaymentRequired (402 insufficient_credits)      available credits below the estimate
    ├── RateLimited (429 rate_limited)                  too many runs in the last hour
    ├── ContractViolation (500 contract_violation)      an artifact breaks its schema
    ├── ComponentError (500 component_failed)           a component failed on valid input
    │   ├── MissingFrameIndices (500 missing_frame_indices)
    │   ├── DependencyMissing (500 dependency_missing)
    │   ├── ModelNotFound (404 model_not_found)         model:version not served / not mapped
    │   ├── ModelServerAuthFailed (401 model_server_auth_failed)
    │   └── InferenceRejected (500 inference_rejected)  the model refused this input
    ├── StorageError (503 storage_error)
    ├── DatabaseError (503 database_error)
    ├── TimeoutExceeded (504 timeout_exceeded)          a run/component/segment time budget ran out
    ├── RenderError (502 render_failed)                 the written analysis could not be made
    │   ├── RenderInvalid (502 render_invalid)          the model's text failed the validator twice
    │   ├── LlmRateLimited (429 llm_rate_limited)       the LLM endpoint said 429: try later
    │   ├── LlmUnavailable (503 llm_unavailable)        no answer: down, refused, 5xx after retries
    │   ├── LlmTimeout (504 llm_timeout)                no answer within llm.timeout_s (retried)
    │   └── LlmBadResponse (502 llm_bad_response)       an answer that is not the protocol's JSON
    └── TransientError (503 transient_error)            safe to retry with backoff
        ├── ServiceUnavailable (503 service_unavailable)
        │   └── ModelServingUnavailable (503 model_serving_unavailable)  Triton not ready now
        ├── Overloaded (503 overloaded)                 the API sheds load: retry after a while
        └── OutOfMemory (503 out_of_memory)

Control flow never looks at message text: catch a class, or read ``code``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar


class TrendflowError(Exception):
    """Base of every TrendFlow error: a stable ``code``, an HTTP ``status`` and JSON ``details``."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, /, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword details do not survive the default Exception pickling; Ray re-raises
        # errors across actors by pickling them.
        return (_rebuild, (type(self), self.message, self.details))

    def to_dict(self) -> dict[str, Any]:
        """The JSON body the API returns: ``{code, message, details}``."""
        return {"code": self.code, "message": self.message, "details": self.details}

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[TrendflowError], message: str, details: dict[str, Any]) -> TrendflowError:
    return cls(message, **details)


class ConfigError(TrendflowError):
    code = "config_error"


class ModelServingDisabled(ConfigError):
    """A permanent property of the deployment (not a fault): retrying cannot help."""

    code = "model_serving_disabled"
    status = 422


class LlmNotConfigured(ConfigError):
    """A profile renders with ``engine: llm`` but this deployment has no LLM gateway."""

    code = "llm_not_configured"
    status = 422


class RunUnschedulable(ConfigError):
    code = "run_unschedulable"


class InputError(TrendflowError):
    code = "invalid_input"
    status = 400


class InvalidVideoUrl(InputError):
    code = "invalid_video_url"


class InvalidIdentifier(InputError):
    code = "invalid_identifier"


class InvalidProfile(InputError):
    code = "invalid_profile"


class UnsafeStorageKey(InputError):
    code = "unsafe_storage_key"


class InvalidCallbackUrl(InputError):
    code = "invalid_callback_url"


class UploadTooLarge(InputError):
    code = "upload_too_large"
    status = 413


class AuthError(TrendflowError):
    code = "unauthorized"
    status = 401


class Forbidden(AuthError):
    code = "forbidden"
    status = 403


class MediaError(TrendflowError):
    code = "media_error"
    status = 422


class UnsupportedMedia(MediaError):
    code = "unsupported_media"
    status = 415


class VideoTooShort(MediaError):
    code = "video_too_short"


class VideoTooLong(MediaError):
    code = "video_too_long"


class VideoFileCorrupted(MediaError):
    code = "video_file_corrupted"


class DownloadFailed(MediaError):
    code = "download_failed"
    status = 502


class VideoUnavailable(DownloadFailed):
    code = "video_unavailable"
    status = 404


class NotFound(TrendflowError):
    code = "not_found"
    status = 404


class RunNotFound(NotFound):
    code = "run_not_found"


class ArtifactNotFound(NotFound):
    code = "artifact_not_found"


class ProfileNotFound(NotFound):
    code = "profile_not_found"


class UserNotFound(NotFound):
    code = "user_not_found"


class ComponentNotFound(NotFound):
    code = "component_not_found"


class UploadNotFound(NotFound):
    code = "upload_not_found"


class FramesExpired(NotFound):
    """The run's frames archive (``frames/<run_id>/``) no longer holds its frames: retention
    deleted them after ``segmenter.frames_retention_days``, or they were never kept."""

    code = "frames_expired"
    status = 410


class EndpointDisabled(NotFound):
    code = "endpoint_disabled"


class Conflict(TrendflowError):
    code = "conflict"
    status = 409


class InvalidStatusTransition(Conflict):
    code = "invalid_status_transition"


class IdempotencyConflict(Conflict):
    code = "idempotency_key_reused"


class PriceChanged(Conflict):
    """Details: ``total`` (the price now) and ``accepted`` (what the user agreed to)."""

    code = "price_changed"


class VideoExceedsQuote(Conflict):
    """The video a run fetched is longer, or of a larger frame size, than the facts it was
    priced and reserved for; the run is refused (nothing charged). Details: ``priced`` and
    ``actual`` (``duration_s``, ``short_side``), ``tolerance_s``."""

    code = "video_exceeds_quote"


class PaymentRequired(TrendflowError):
    """Details: ``required``, ``available``, ``shortfall`` (decimal strings, credits)."""

    code = "insufficient_credits"
    status = 402


class RateLimited(TrendflowError):
    """Details: ``limit``, ``window_s``, ``retry_after_s`` (the API's ``Retry-After``)."""

    code = "rate_limited"
    status = 429


class RunNotReady(Conflict):
    code = "run_not_ready"


class ContractViolation(TrendflowError):
    code = "contract_violation"


class ComponentError(TrendflowError):
    code = "component_failed"


class MissingFrameIndices(ComponentError):
    code = "missing_frame_indices"


class DependencyMissing(ComponentError):
    code = "dependency_missing"


class ModelNotFound(ComponentError):
    code = "model_not_found"
    status = 404


class ModelServerAuthFailed(ComponentError):
    code = "model_server_auth_failed"
    status = 401


class InferenceRejected(ComponentError):
    code = "inference_rejected"


class StorageError(TrendflowError):
    code = "storage_error"
    status = 503


class StorageUnavailable(StorageError):
    """The result store kept failing a write the run needs, after retries."""

    code = "storage_unavailable"


class DatabaseError(TrendflowError):
    code = "database_error"
    status = 503


class TimeoutExceeded(TrendflowError):
    code = "timeout_exceeded"
    status = 504


class RenderError(TrendflowError):
    """The written analysis failed; the run's component results are kept and nothing is charged
    for the render."""

    code = "render_failed"
    status = 502


class RenderInvalid(RenderError):
    """Details: ``problems`` (the validator's complaints of the last attempt), ``attempts``."""

    code = "render_invalid"


class LlmRateLimited(RenderError):
    """Details: ``retry_after_s`` (the endpoint's ``Retry-After``, the API's too)."""

    code = "llm_rate_limited"
    status = 429


class LlmUnavailable(RenderError):
    code = "llm_unavailable"
    status = 503


class LlmTimeout(RenderError):
    code = "llm_timeout"
    status = 504


class LlmBadResponse(RenderError):
    code = "llm_bad_response"


class TransientError(TrendflowError):
    code = "transient_error"
    status = 503
    retryable = True


class ServiceUnavailable(TransientError):
    code = "service_unavailable"


class ModelServingUnavailable(ServiceUnavailable):
    """No model server answers ready now (stopped, crashed, restarting); details
    ``components``, ``retry_after_s`` (the API's ``Retry-After``)."""

    code = "model_serving_unavailable"


class ExecutionLost(TransientError):
    """A ``running`` run's execution disappeared (no heartbeat) more often than allowed."""

    code = "execution_lost"


class Overloaded(TransientError):
    code = "overloaded"


class OutOfMemory(TransientError):
    code = "out_of_memory"


def field_problems(errors: Iterable[Mapping[str, Any]], *, root: str = "") -> list[dict[str, str]]:
    """Pydantic's ``ValidationError.errors()`` as the ``details.errors`` of an ``invalid_*``
    error: one ``{"field", "problem"}`` per problem (``field`` dotted; ``root`` when empty)."""
    return [
        {"field": ".".join(str(p) for p in err.get("loc", ())) or root,
         "problem": str(err.get("msg", "invalid"))}
        for err in errors
    ]


def all_error_classes() -> list[type[TrendflowError]]:
    """Every class of the tree, base first (for docs and the code-uniqueness test)."""
    seen: list[type[TrendflowError]] = []
    stack: list[type[TrendflowError]] = [TrendflowError]
    while stack:
        cls = stack.pop(0)
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen
