"""The owner's failure rules as pure functions: what to retry, how long to wait, when to give up.

DESIGN.md §5:

* only transient errors are retried (``TrendflowError.retryable``: network, timeout, Triton
  unavailable, out of memory) and a lost worker (the actor died, Ray restarts it), with
  exponential backoff; logic errors, bad input, missing dependencies fail at once;
* :class:`~trendflow.errors.OutOfMemory` halves the batch size, at most ``oom_max_halvings``
  times, then the component fails with ``out_of_memory``;
* timeouts: the run ``max(run_timeout_min_s, factor × duration)``, each component, and
  download + segmentation — operator settings, the same for every profile.

What a Ray exception means is decided once, by :func:`classify` (the one boundary where Ray's
exception types become the runtime's few failure kinds, as httpx maps transport errors in one
place): the executions act on its :class:`Failure` and never inspect Ray's types themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ray.exceptions import (
    ActorUnavailableError,
    ObjectLostError,
    RayActorError,
    RayTaskError,
    TaskCancelledError,
)

from trendflow.errors import OutOfMemory, TrendflowError
from trendflow.settings import RuntimeSettings


class Verdict(StrEnum):
    RETRY = "retry"  # transient: same work again after a backoff
    HALVE_BATCH = "halve_batch"  # out of memory: retry with half the batch
    FAIL = "fail"  # permanent: no retry


def backoff_s(attempt: int, settings: RuntimeSettings) -> float:
    """Delay before retry number ``attempt`` (0-based): base × 2^attempt, capped."""
    return min(settings.retry_backoff_max_s, settings.retry_backoff_s * (2.0**attempt))


def decide(
    error: BaseException,
    *,
    attempt: int,
    halvings: int,
    settings: RuntimeSettings,
    worker_lost: bool = False,
) -> Verdict:
    """What to do after ``error`` on try ``attempt`` (0-based) with ``halvings`` done so far.

    ``worker_lost`` marks a worker process that died under the task (killed, crashed): the
    work itself is fine, so it is retried like a transient error.
    """
    if isinstance(error, OutOfMemory):
        return Verdict.HALVE_BATCH if halvings < settings.oom_max_halvings else Verdict.FAIL
    retryable = worker_lost or (isinstance(error, TrendflowError) and error.retryable)
    if retryable and attempt < settings.retry_attempts:
        return Verdict.RETRY
    return Verdict.FAIL


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds allowed for the whole run, for one component, and for download + segmentation."""

    run_s: float
    component_s: float
    segment_s: float


def resolve_timeouts(settings: RuntimeSettings, duration_s: float | None) -> Timeouts:
    """The timeouts of one run. ``duration_s`` is None before the video was probed."""
    run_s = settings.run_timeout_min_s
    if duration_s is not None:
        run_s = max(run_s, settings.run_timeout_duration_factor * duration_s)
    return Timeouts(
        run_s=run_s,
        component_s=settings.component_timeout_s,
        segment_s=settings.segment_timeout_s,
    )


class Failure(StrEnum):
    """What went wrong with a Ray call, as the runtime acts on it."""

    RESTARTING = "restarting"  # the actor called is being restarted: wait for it, no retry spent
    WORKER_LOST = "worker_lost"  # the actor's process died under the task: retry
    INPUT_LOST = "input_lost"  # an object the task needed died with its node: rebuild it
    CANCELLED = "cancelled"  # the task was cancelled (the run is being cancelled)
    ERROR = "error"  # the task itself raised: ``error`` is its own exception


@dataclass(frozen=True, slots=True)
class Classified:
    kind: Failure
    error: BaseException  # the task's own exception for ERROR and INPUT_LOST, else Ray's


def task_error(exc: BaseException) -> BaseException:
    """The application error inside a ``RayTaskError`` (TrendFlow errors pickle intact)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def classify(exc: BaseException) -> Classified:
    """The failure kind of an exception raised by awaiting a Ray task or actor call."""
    if isinstance(exc, ActorUnavailableError):
        if isinstance(exc, RayTaskError):
            # The task ran, and an input's producer is the actor restarting (Ray tried to
            # rebuild a lost chunk or track from it): that input is lost.
            return Classified(Failure.INPUT_LOST, exc)
        return Classified(Failure.RESTARTING, exc)
    if isinstance(exc, RayActorError):  # ActorDiedError included
        return Classified(Failure.WORKER_LOST, exc)
    if isinstance(exc, TaskCancelledError):
        return Classified(Failure.CANCELLED, exc)
    if isinstance(exc, ObjectLostError):  # also a RayTaskError(ObjectLostError) of the task
        return Classified(Failure.INPUT_LOST, task_error(exc))
    return Classified(Failure.ERROR, task_error(exc))


__all__ = [
    "Classified",
    "Failure",
    "Timeouts",
    "Verdict",
    "backoff_s",
    "classify",
    "decide",
    "resolve_timeouts",
    "task_error",
]
