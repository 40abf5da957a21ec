"""The one metrics module: Prometheus metrics of TrendFlow, mirrored as Ray metrics.

Names carry the ``trendflow_`` prefix and a unit suffix; every label has a bounded set of values
(never a run id or a user id):

==========================================  =========  ============================================
name                                        type       labels
==========================================  =========  ============================================
trendflow_runs_total                        counter    ``status``: ok | error | cancelled
trendflow_run_success_ratio                 gauge      — (share of ``ok`` among runs finished in
                                                       the last hour; 1.0 when none finished)
trendflow_component_duration_seconds        histogram  ``component`` (catalog names)
trendflow_queue_length                      gauge      — (runs waiting in status ``queued``)
trendflow_errors_total                      counter    ``code`` (stable codes of ``errors.py``)
trendflow_gpu_utilization_percent           gauge      ``gpu`` (device index)
trendflow_model_batch_rows                  histogram  ``model`` (served model names): rows per
                                                       request a GPU actor sent (merged batches)
==========================================  =========  ============================================

Inside a Ray worker or driver (Ray already imported and initialised) each update is also recorded
as a Ray metric of the same name, so the Ray dashboard's metrics view and the Prometheus that
scrapes Ray's per-node metrics endpoint show them. Outside Ray only the Prometheus registry is
updated; the API serves it at ``/metrics`` (:func:`render_latest`).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from trendflow.errors import all_error_classes

RUN_STATUSES: Final = ("ok", "error", "cancelled")
SUCCESS_WINDOW_S: Final = 3600.0
DURATION_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
BATCH_ROW_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_COMPONENT_NAME_MAX: Final = 64


def _known_codes() -> frozenset[str]:
    return frozenset(cls.code for cls in all_error_classes())


class Metrics:
    """The metric objects on one registry, with helpers that keep labels bounded."""

    def __init__(self, registry: CollectorRegistry | None = None, *, mirror_to_ray: bool = True):
        self.registry = registry or CollectorRegistry()
        self._mirror_to_ray = mirror_to_ray
        self._lock = threading.Lock()
        self._finished: deque[tuple[float, bool]] = deque()
        self._ray: dict[str, Any] | None = None
        self.runs_total = Counter(
            "trendflow_runs", "Runs finished, by final status.", ["status"],
            registry=self.registry,
        )
        self.run_success_ratio = Gauge(
            "trendflow_run_success_ratio",
            "Share of runs finished ok in the last hour (1.0 when none finished).",
            registry=self.registry,
        )
        self.run_success_ratio.set(1.0)
        self.component_duration_seconds = Histogram(
            "trendflow_component_duration_seconds",
            "Wall time of one component of one run (setup, map over chunks, reduce, persist).",
            ["component"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.queue_length = Gauge(
            "trendflow_queue_length", "Runs waiting in status queued.", registry=self.registry
        )
        self.errors_total = Counter(
            "trendflow_errors", "Errors by stable error code.", ["code"], registry=self.registry
        )
        self.gpu_utilization_percent = Gauge(
            "trendflow_gpu_utilization_percent",
            "GPU utilisation reported by NVML, per device.",
            ["gpu"],
            registry=self.registry,
        )
        self.model_batch_rows = Histogram(
            "trendflow_model_batch_rows",
            "Rows per request a GPU actor sent to the model server (requests merged across "
            "chunks and runs).",
            ["model"],
            buckets=BATCH_ROW_BUCKETS,
            registry=self.registry,
        )

    # -- updates ------------------------------------------------------------------------------

    def run_finished(self, status: str, *, now: float | None = None) -> None:
        """Count a finished run and refresh the one-hour success ratio."""
        if status not in RUN_STATUSES:
            raise ValueError(f"run status {status!r} is not one of {RUN_STATUSES}")
        now = time.monotonic() if now is None else now
        with self._lock:
            if status != "cancelled":
                self._finished.append((now, status == "ok"))
            while self._finished and self._finished[0][0] < now - SUCCESS_WINDOW_S:
                self._finished.popleft()
            ok = sum(1 for _, good in self._finished if good)
            ratio = ok / len(self._finished) if self._finished else 1.0
        self.runs_total.labels(status=status).inc()
        self.run_success_ratio.set(ratio)
        self._ray_call("runs_total", "inc", 1.0, {"status": status})
        self._ray_call("run_success_ratio", "set", ratio, {})

    def component_duration(self, component: str, seconds: float) -> None:
        """Observe one component's wall time."""
        if not component or len(component) > _COMPONENT_NAME_MAX or not component.isidentifier():
            raise ValueError(f"component label {component!r} is not a component name")
        self.component_duration_seconds.labels(component=component).observe(seconds)
        self._ray_call("component_duration_seconds", "observe", seconds, {"component": component})

    def set_queue_length(self, n: int) -> None:
        self.queue_length.set(n)
        self._ray_call("queue_length", "set", float(n), {})

    def error(self, code: str) -> None:
        """Count an error by its stable code; codes outside the error tree count as internal."""
        label = code if code in _known_codes() else "internal_error"
        self.errors_total.labels(code=label).inc()
        self._ray_call("errors_total", "inc", 1.0, {"code": label})

    def gpu_utilization(self, gpu: int, percent: float) -> None:
        self.gpu_utilization_percent.labels(gpu=str(gpu)).set(percent)
        self._ray_call("gpu_utilization_percent", "set", percent, {"gpu": str(gpu)})

    def model_batch(self, model: str, rows: int) -> None:
        """Observe the rows of one request sent to ``model`` (a served model's name)."""
        if not model or len(model) > _COMPONENT_NAME_MAX:
            raise ValueError(f"model label {model!r} is not a served model's name")
        self.model_batch_rows.labels(model=model).observe(rows)
        self._ray_call("model_batch_rows", "observe", float(rows), {"model": model})

    # -- Ray mirror ---------------------------------------------------------------------------

    def _ray_metrics(self) -> dict[str, Any] | None:
        # Ray is imported only where it already runs: the API and the actors import it, other
        # processes (CLI, tests of components) never pay for it.
        ray = sys.modules.get("ray")
        if not self._mirror_to_ray or ray is None or not ray.is_initialized():
            return None
        if self._ray is None:
            from ray.util import metrics as rm

            self._ray = {
                "runs_total": rm.Counter(
                    "trendflow_runs", "Runs finished, by final status.", tag_keys=("status",)
                ),
                "run_success_ratio": rm.Gauge(
                    "trendflow_run_success_ratio", "Share of runs finished ok in the last hour."
                ),
                "component_duration_seconds": rm.Histogram(
                    "trendflow_component_duration_seconds",
                    "Wall time of one component of one run.",
                    boundaries=list(DURATION_BUCKETS),
                    tag_keys=("component",),
                ),
                "queue_length": rm.Gauge("trendflow_queue_length", "Runs waiting in queue."),
                "errors_total": rm.Counter(
                    "trendflow_errors", "Errors by stable error code.", tag_keys=("code",)
                ),
                "gpu_utilization_percent": rm.Gauge(
                    "trendflow_gpu_utilization_percent", "GPU utilisation.", tag_keys=("gpu",)
                ),
                "model_batch_rows": rm.Histogram(
                    "trendflow_model_batch_rows",
                    "Rows per request a GPU actor sent to the model server.",
                    boundaries=list(BATCH_ROW_BUCKETS),
                    tag_keys=("model",),
                ),
            }
        return self._ray

    def _ray_call(self, name: str, method: str, value: float, tags: dict[str, str]) -> None:
        metrics = self._ray_metrics()
        if metrics is None:
            return
        fn: Callable[..., None] = getattr(metrics[name], method)
        fn(value, tags=tags or None)


@lru_cache(maxsize=1)
def get_metrics() -> Metrics:
    """The process-wide metrics (one registry per process)."""
    return Metrics()


def render_latest(metrics: Metrics | None = None) -> bytes:
    """The Prometheus text exposition of ``metrics`` (default: this process's)."""
    return generate_latest((metrics or get_metrics()).registry)


def sample_gpu_utilization(metrics: Metrics | None = None) -> int:
    """Read every GPU's utilisation from NVML into the gauge; returns how many GPUs were read.

    Machines without an NVIDIA driver have no GPUs to report: 0, and nothing is set.
    """
    import pynvml  # nvidia-ml-py, NVIDIA's own bindings (a declared dependency)

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return 0
    try:
        count = pynvml.nvmlDeviceGetCount()
        for i in range(count):
            util = pynvml.nvmlDeviceGetUtilizationRates(pynvml.nvmlDeviceGetHandleByIndex(i))
            (metrics or get_metrics()).gpu_utilization(i, float(util.gpu))
        return count
    finally:
        pynvml.nvmlShutdown()
