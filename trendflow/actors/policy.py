"""The owner's failure rules as pure functions: what to retry, how long to wait, when to give up.

DESIGN.md §5:

* only transient errors are retried (``TrendflowError.retryable``: network, timeout, Triton
  unavailable, out of memory) and a lost worker (the actor died, Ray restarts it), with
  exponential backoff; logic errors, bad input, missing dependencies fail at once;
* :class:`~trendflow.errors.OutOfMemory` halves the batch size, at most ``oom_max_halvings``
  times, then the component fails with ``out_of_memory``;
* timeouts: the run ``max(run_timeout_min_s, factor × duration)``, each component, and
  download + segmentation — operator settings, the same for every profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

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


__all__ = ["Timeouts", "Verdict", "backoff_s", "decide", "resolve_timeouts"]
