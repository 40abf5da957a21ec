"""plan_batches: packing by resources, strict FIFO, no starvation."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trendflow.actors.planning import Capacity, PendingRun, TaskDemand, plan_batches


def _emotion_run(i: int) -> PendingRun:
    return PendingRun(
        run_id=f"r{i}",
        tasks=(TaskDemand("face_emotion", cpus=0.1, memory_mb=100, gpu_memory_mb=2048),),
    )


def test_owner_example_eight_gb_two_gb_per_task_gives_four() -> None:
    plan = plan_batches(
        [_emotion_run(i) for i in range(6)],
        Capacity(cpus=16, memory_mb=64_000, gpu_free_mb={"gpu0": 8192}),
    )
    assert plan.admitted == ("r0", "r1", "r2", "r3")
    assert plan.waiting == ("r4", "r5")
    assert all(p == {"face_emotion": "gpu0"} for p in plan.placement.values())
    assert plan.remaining.gpu_free_mb == {"gpu0": 0}


def test_oldest_run_is_never_passed_over_by_a_smaller_one() -> None:
    big = PendingRun("big", (TaskDemand("motion", cpus=1, memory_mb=900),))
    small = PendingRun("small", (TaskDemand("motion", cpus=1, memory_mb=100),))
    plan = plan_batches([big, small], Capacity(cpus=4, memory_mb=500), total=Capacity(4, 1000))
    assert plan.admitted == ()
    assert plan.waiting == ("big", "small")


def test_run_larger_than_the_idle_cluster_is_unschedulable_not_blocking() -> None:
    huge = PendingRun("huge", (TaskDemand("faces", cpus=1, memory_mb=100, gpu_memory_mb=99_999),))
    ok = _emotion_run(1)
    plan = plan_batches([huge, ok], Capacity(cpus=4, memory_mb=1000, gpu_free_mb={"g": 4096}))
    assert plan.unschedulable == ("huge",)
    assert plan.admitted == ("r1",)


def test_without_gpus_model_tasks_are_planned_by_cpu_and_ram_only() -> None:
    plan = plan_batches([_emotion_run(i) for i in range(3)], Capacity(cpus=0.25, memory_mb=1000))
    assert plan.admitted == ("r0", "r1")
    assert plan.placement["r0"] == {}


def test_gpu_tasks_spread_over_gpus_first_fit() -> None:
    run = PendingRun(
        "r",
        (
            TaskDemand("faces", 0.5, 100, gpu_memory_mb=3000),
            TaskDemand("ocr_text", 0.5, 100, gpu_memory_mb=3000),
        ),
    )
    plan = plan_batches([run], Capacity(4, 4000, gpu_free_mb={"a": 4000, "b": 4000}))
    assert sorted(plan.placement["r"].values()) == ["a", "b"]


tasks_st = st.lists(
    st.builds(
        TaskDemand,
        component=st.sampled_from(["faces", "motion", "ocr_text", "loudness", "face_emotion"]),
        cpus=st.sampled_from([0.25, 0.5, 1.0, 2.0]),
        memory_mb=st.integers(1, 4000),
        gpu_memory_mb=st.sampled_from([0, 0, 512, 2048, 6000]),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda t: t.component,
)
runs_st = st.lists(tasks_st, max_size=25).map(
    lambda ts: [PendingRun(f"r{i}", tuple(t)) for i, t in enumerate(ts)]
)
capacity_st = st.builds(
    Capacity,
    cpus=st.sampled_from([1.0, 2.0, 4.0, 16.0]),
    memory_mb=st.integers(500, 32_000),
    gpu_free_mb=st.dictionaries(st.sampled_from(["g0", "g1"]), st.integers(0, 16_000), max_size=2),
    max_runs=st.one_of(st.none(), st.integers(1, 8)),
)


@settings(max_examples=300, deadline=None)
@given(runs=runs_st, capacity=capacity_st)
def test_plan_never_exceeds_capacity_and_is_a_fifo_prefix(
    runs: list[PendingRun], capacity: Capacity
) -> None:
    plan = plan_batches(runs, capacity)
    by_id = {r.run_id: r for r in runs}
    admitted = [by_id[r] for r in plan.admitted]
    assert sum(r.cpus for r in admitted) <= capacity.cpus + 1e-9
    assert sum(r.memory_mb for r in admitted) <= capacity.memory_mb
    if capacity.max_runs is not None:
        assert len(admitted) <= capacity.max_runs
    if capacity.gpu_free_mb:
        used: dict[str, int] = {}
        for run in admitted:
            for task in run.tasks:
                if task.gpu_memory_mb:
                    gpu = plan.placement[run.run_id][task.component]
                    used[gpu] = used.get(gpu, 0) + task.gpu_memory_mb
        assert all(used[g] <= capacity.gpu_free_mb[g] for g in used)
    # Every run is accounted for exactly once.
    seen = plan.admitted + plan.waiting + plan.unschedulable
    assert sorted(seen) == sorted(by_id)
    # FIFO: among schedulable runs, the admitted ones are exactly a prefix.
    schedulable = [r.run_id for r in runs if r.run_id not in plan.unschedulable]
    assert list(plan.admitted) == schedulable[: len(plan.admitted)]


@settings(max_examples=200, deadline=None)
@given(runs=runs_st, capacity=capacity_st)
def test_no_starvation_on_an_idle_cluster_the_oldest_schedulable_run_starts(
    runs: list[PendingRun], capacity: Capacity
) -> None:
    plan = plan_batches(runs, capacity)
    schedulable = [r.run_id for r in runs if r.run_id not in plan.unschedulable]
    if schedulable and capacity.max_runs != 0:
        assert plan.admitted[:1] == (schedulable[0],)
