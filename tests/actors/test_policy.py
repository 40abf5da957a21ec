"""The owner's failure rules: what is retried, how long to wait, when to give up."""

from __future__ import annotations

import pytest

from trendflow.actors.policy import Verdict, backoff_s, decide, resolve_timeouts
from trendflow.errors import (
    ComponentError,
    DependencyMissing,
    InputError,
    OutOfMemory,
    ServiceUnavailable,
)
from trendflow.settings import RuntimeSettings

RT = RuntimeSettings(retry_attempts=3, retry_backoff_s=1.0, retry_backoff_max_s=5.0)


@pytest.mark.parametrize(
    "error", [ComponentError("bug"), InputError("bad"), DependencyMissing("no model"),
              ValueError("plain bug")]
)
def test_logic_errors_and_bad_input_fail_at_once(error: Exception) -> None:
    assert decide(error, attempt=0, halvings=0, settings=RT) is Verdict.FAIL


def test_transient_errors_retry_until_the_budget_is_spent() -> None:
    err = ServiceUnavailable("triton 503")
    verdicts = [decide(err, attempt=a, halvings=0, settings=RT) for a in range(5)]
    assert verdicts == [Verdict.RETRY] * 3 + [Verdict.FAIL] * 2


def test_a_lost_worker_is_retried_like_a_transient_error() -> None:
    assert decide(RuntimeError("actor died"), attempt=0, halvings=0, settings=RT,
                  worker_lost=True) is Verdict.RETRY


def test_out_of_memory_halves_the_batch_twice_then_fails() -> None:
    oom = OutOfMemory("cuda oom")
    assert [decide(oom, attempt=0, halvings=h, settings=RT) for h in range(3)] == [
        Verdict.HALVE_BATCH, Verdict.HALVE_BATCH, Verdict.FAIL
    ]


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_s(a, RT) for a in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_run_timeout_is_two_hours_or_six_times_the_video() -> None:
    rt = RuntimeSettings()
    assert resolve_timeouts(rt, 60.0).run_s == 7200.0
    assert resolve_timeouts(rt, 1800.0).run_s == 6 * 1800.0
    assert resolve_timeouts(rt, None).component_s == 1800.0
    assert resolve_timeouts(rt, None).segment_s == 900.0


# -- what a Ray exception means (classify), one case per Ray exception type -------------------

def _task_error(cause: BaseException) -> BaseException:
    """``cause`` as Ray raises it to the caller of a task that raised it (a RayTaskError that
    is also an instance of the cause's type)."""
    from ray.exceptions import RayTaskError

    return RayTaskError("fn", "traceback", cause).as_instanceof_cause()


def test_classify_maps_each_ray_exception_to_one_failure_kind() -> None:
    from ray.exceptions import (
        ActorDiedError,
        ActorUnavailableError,
        ObjectLostError,
        ObjectReconstructionFailedError,
        OwnerDiedError,
        RayActorError,
        TaskCancelledError,
    )

    from trendflow.actors.policy import Failure, classify

    lost = ObjectLostError("ab" * 14, None, "call site")
    cases: list[tuple[BaseException, Failure]] = [
        (ActorUnavailableError("restarting", None), Failure.RESTARTING),
        (ActorDiedError(), Failure.WORKER_LOST),
        (RayActorError(), Failure.WORKER_LOST),
        (TaskCancelledError(), Failure.CANCELLED),
        (lost, Failure.INPUT_LOST),
        (OwnerDiedError("ab" * 14, None, "call site"), Failure.INPUT_LOST),
        (ObjectReconstructionFailedError("ab" * 14), Failure.INPUT_LOST),
        (_task_error(lost), Failure.INPUT_LOST),  # a task whose input was lost
        # a task whose input's producer is restarting (Ray tried to rebuild the input from it)
        (_task_error(ActorUnavailableError("restarting", None)), Failure.INPUT_LOST),
        (_task_error(ServiceUnavailable("triton 503")), Failure.ERROR),
        (_task_error(ValueError("bug")), Failure.ERROR),
        (TimeoutError(), Failure.ERROR),
    ]
    assert [classify(exc).kind for exc, _ in cases] == [kind for _, kind in cases]


def test_classify_hands_back_the_tasks_own_error() -> None:
    from trendflow.actors.policy import Failure, classify

    raised = ServiceUnavailable("triton 503")
    got = classify(_task_error(raised))
    assert got.kind is Failure.ERROR and got.error is raised
    # so the retry rules apply to the application's error, not to Ray's wrapper
    assert decide(got.error, attempt=0, halvings=0, settings=RT) is Verdict.RETRY
    plain = ValueError("not from Ray")
    assert classify(plain).error is plain
