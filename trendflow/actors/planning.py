"""Batch planning: which queued runs start now, and on which GPU each model task goes.

A pure function over plain data, so the scheduler actor only holds state and calls it.

Rules (DESIGN.md §5):

* FIFO: runs are admitted strictly in queue order. When the oldest waiting run does not fit,
  nothing behind it is admitted either — a run is never passed over, so none starves.
* A run's footprint is the sum of its component tasks (all components of a run may be in flight
  together): CPU cores and RAM from ``component_resource_requirements``; each GPU task needs its
  ``gpu_memory_mb`` on one GPU (first fit, largest task first). Admitted footprints never exceed
  the capacity given.
* A run that could not fit even on the idle cluster is reported as unschedulable instead of
  blocking the queue forever; the scheduler fails it with a clear error.
* With no GPUs, model tasks run on CPU inside the model server: their GPU memory is not planned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TaskDemand:
    """One component task of a run."""

    component: str
    cpus: float
    memory_mb: int
    gpu_memory_mb: int = 0


@dataclass(frozen=True, slots=True)
class PendingRun:
    """A queued run, in queue order (the caller sorts by creation time)."""

    run_id: str
    tasks: tuple[TaskDemand, ...]

    @property
    def cpus(self) -> float:
        return sum(t.cpus for t in self.tasks)

    @property
    def memory_mb(self) -> int:
        return sum(t.memory_mb for t in self.tasks)


@dataclass(frozen=True, slots=True)
class Capacity:
    """What is free now: CPU cores, RAM, and free memory per GPU (by GPU id)."""

    cpus: float
    memory_mb: int
    gpu_free_mb: dict[str, int] = field(default_factory=dict)
    max_runs: int | None = None  # an upper bound on one batch, if any


@dataclass(frozen=True, slots=True)
class Plan:
    """The outcome: runs to start now (FIFO order), GPU placement, the rest."""

    admitted: tuple[str, ...]
    placement: dict[str, dict[str, str]]  # run_id → component → gpu id
    waiting: tuple[str, ...]
    unschedulable: tuple[str, ...]
    remaining: Capacity


def _place_gpu_tasks(
    tasks: Sequence[TaskDemand], free: dict[str, int]
) -> dict[str, str] | None:
    """First-fit-decreasing placement of ``tasks`` on GPUs; None if they do not all fit."""
    gpu_tasks = sorted((t for t in tasks if t.gpu_memory_mb > 0), key=lambda t: -t.gpu_memory_mb)
    if not gpu_tasks:
        return {}
    if not free:
        return None
    trial = dict(free)
    placement: dict[str, str] = {}
    for task in gpu_tasks:
        for gpu in sorted(trial):
            if trial[gpu] >= task.gpu_memory_mb:
                trial[gpu] -= task.gpu_memory_mb
                placement[task.component] = gpu
                break
        else:
            return None
    free.clear()
    free.update(trial)
    return placement


def _fits_alone(run: PendingRun, total: Capacity, use_gpus: bool) -> bool:
    if run.cpus > total.cpus or run.memory_mb > total.memory_mb:
        return False
    if not use_gpus:
        return True
    return _place_gpu_tasks(run.tasks, dict(total.gpu_free_mb)) is not None


def plan_batches(
    pending: Sequence[PendingRun], capacity: Capacity, *, total: Capacity | None = None
) -> Plan:
    """Admit the longest FIFO prefix of ``pending`` that fits ``capacity``.

    ``total`` is the capacity of the idle cluster (defaults to ``capacity``); runs larger than it
    are unschedulable and skipped so they do not block the queue.
    """
    total = total or capacity
    use_gpus = bool(total.gpu_free_mb)
    cpus, memory = capacity.cpus, capacity.memory_mb
    gpu_free = dict(capacity.gpu_free_mb)
    admitted: list[str] = []
    placement: dict[str, dict[str, str]] = {}
    unschedulable: list[str] = []
    waiting: list[str] = []
    blocked = False
    for run in pending:
        if not _fits_alone(run, total, use_gpus):
            unschedulable.append(run.run_id)
            continue
        if blocked:
            waiting.append(run.run_id)
            continue
        if capacity.max_runs is not None and len(admitted) >= capacity.max_runs:
            blocked = True
            waiting.append(run.run_id)
            continue
        if run.cpus > cpus + 1e-9 or run.memory_mb > memory:
            blocked = True
            waiting.append(run.run_id)
            continue
        if use_gpus:
            placed = _place_gpu_tasks(run.tasks, gpu_free)
            if placed is None:
                blocked = True
                waiting.append(run.run_id)
                continue
        else:
            placed = {}
        cpus -= run.cpus
        memory -= run.memory_mb
        admitted.append(run.run_id)
        placement[run.run_id] = placed
    return Plan(
        admitted=tuple(admitted),
        placement=placement,
        waiting=tuple(waiting),
        unschedulable=tuple(unschedulable),
        remaining=Capacity(
            cpus=cpus, memory_mb=memory, gpu_free_mb=gpu_free, max_runs=capacity.max_runs
        ),
    )
