"""Cross-request batching in front of Triton: concurrent requests to one model become one.

A GPU actor maps several chunks at once — chunks of one run and of the other runs of its batch
(``max_concurrency`` threads, :mod:`trendflow.actors.workers`). Each map asks its model for the
frames of its own chunk; :class:`BatchingClient` queues those requests and sends them to the
server merged along the batch dimension, up to the model's ``max_batch_size`` rows, then hands
every caller its own rows back. A component keeps calling ``infer`` as if it were alone.

Dispatch rule (per model, version and input signature): a batch leaves as soon as it is full,
or when its oldest request has waited ``max_wait_s``; requests are taken oldest first and
never split, so a request keeps its rows together and its order. At most ``max_in_flight``
merged requests are at the server at once, each on its own connection: ``tritonclient``'s
clients are not thread-safe, so every dispatch thread holds its own.

Failures: a transient error has already been retried by the inner client and reaches every
caller of the batch. A merged batch the model rejects
(:class:`~trendflow.errors.InferenceRejected`) or has no memory for
(:class:`~trendflow.errors.OutOfMemory`) is sent again request by request, so only the request
at fault fails, and a batch too big for the device shrinks back to the callers' own batches; a
lone request out of memory reaches its caller, whose scheduler halves the component's batch
(maps in flight) and retries, at most ``oom_max_halvings`` times.

Merging changes which rows share a server call, never a row's result: the served models compute
each row on its own (``tests/triton/test_batching.py`` checks every model), which keeps the Ray
runtime's arrays identical to the local runner's.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trendflow.errors import ComponentError, InferenceRejected, OutOfMemory
from trendflow.triton.client import InferenceClient

Signature = tuple[str, str, tuple[tuple[str, str, tuple[int, ...]], ...]]


@dataclass(slots=True)
class _Request:
    inputs: Mapping[str, np.ndarray]
    rows: int
    enqueued: float
    future: Future[dict[str, np.ndarray]] = field(default_factory=Future)


@dataclass(slots=True)
class BatchStats:
    """What the client sent: callers' requests, server calls, rows (for metrics and benches)."""

    requests: int = 0
    calls: int = 0
    rows: int = 0
    merged_calls: int = 0  # server calls that carried more than one caller's request
    oom_splits: int = 0  # merged batches the model had no memory for, sent again request by request

    @property
    def rows_per_call(self) -> float:
        return self.rows / self.calls if self.calls else 0.0


def _signature(model: str, version: str, inputs: Mapping[str, np.ndarray]) -> Signature:
    """Requests merge only with requests of the same model, names, dtypes and row shapes."""
    return (model, version, tuple(
        sorted((name, arr.dtype.str, tuple(arr.shape[1:])) for name, arr in inputs.items())
    ))


def _rows(inputs: Mapping[str, np.ndarray]) -> int:
    counts = {int(arr.shape[0]) if arr.ndim else -1 for arr in inputs.values()}
    if len(counts) != 1 or -1 in counts:
        raise InferenceRejected(
            "a batched request needs every input to share its first (batch) dimension",
            shapes={k: list(v.shape) for k, v in inputs.items()},
        )
    return counts.pop()


class BatchingClient:
    """An :class:`~trendflow.triton.client.InferenceClient` that merges concurrent requests.

    ``make_client`` builds one inner client per dispatch thread (and one for configs).
    ``max_wait_s = 0`` still merges what is already queued when a dispatch thread is free.
    ``observe(model, rows)`` is called after every server call (metrics).
    """

    def __init__(
        self,
        make_client: Callable[[], InferenceClient],
        *,
        max_wait_s: float = 0.005,
        max_in_flight: int = 2,
        observe: Callable[[str, int], None] | None = None,
    ) -> None:
        if max_wait_s < 0 or max_in_flight < 1:
            raise ValueError(
                f"max_wait_s >= 0 and max_in_flight >= 1, got {max_wait_s}, {max_in_flight}"
            )
        self._make_client = make_client
        self.max_wait_s = max_wait_s
        self._observe = observe  # (model name, rows) of every server call
        self._local = threading.local()
        self._config_client = make_client()
        self._clients: list[InferenceClient] = [self._config_client]
        self._config_lock = threading.Lock()
        self._cond = threading.Condition()
        self._queues: dict[Signature, deque[_Request]] = {}
        self._limits: dict[Signature, int] = {}
        self._free = max_in_flight
        self._pool = ThreadPoolExecutor(max_in_flight, thread_name_prefix="triton-batch")
        self._closed = False
        self.stats = BatchStats()
        self._dispatcher = threading.Thread(
            target=self._dispatch_forever, name="triton-batcher", daemon=True
        )
        self._dispatcher.start()

    # -- InferenceClient ----------------------------------------------------------------------

    def model_config(self, model: str, version: str) -> dict[str, Any]:
        with self._config_lock:
            return self._config_client.model_config(model, version)

    def infer(
        self, model: str, version: str, inputs: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Queue ``inputs`` with the other callers' and wait for this request's own rows."""
        limit = int(self.model_config(model, version).get("max_batch_size", 0))
        if limit <= 1:  # a model without a batch dimension (or of one row): nothing to merge
            return self._client().infer(model, version, inputs)
        rows = _rows(inputs)
        key = _signature(model, version, inputs)
        request = _Request(inputs, rows, time.monotonic())
        with self._cond:
            if self._closed:
                raise RuntimeError("the batching client is closed")
            self._limits[key] = limit
            self._queues.setdefault(key, deque()).append(request)
            self.stats.requests += 1
            self._cond.notify_all()
        return request.future.result()

    def close(self) -> None:
        """Stop dispatching (queued requests still go out) and close the inner clients."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._dispatcher.join()
        self._pool.shutdown(wait=True)
        for client in self._clients:
            closer = getattr(client, "close", None)
            if closer is not None:
                closer()

    # -- dispatching --------------------------------------------------------------------------

    def _ready(self, now: float) -> tuple[Signature, list[_Request]] | None:
        """The batch to send now (full, or its oldest request waited long enough), if any."""
        oldest: tuple[float, Signature] | None = None
        for key, queue in self._queues.items():
            if not queue:
                continue
            due = (sum(r.rows for r in queue) >= self._limits[key] or self._closed
                   or now - queue[0].enqueued >= self.max_wait_s)
            if due and (oldest is None or queue[0].enqueued < oldest[0]):
                oldest = (queue[0].enqueued, key)
        if oldest is None:
            return None
        key = oldest[1]
        queue, limit = self._queues[key], self._limits[key]
        taken = [queue.popleft()]  # alone if it is bigger than the model's batch already
        rows = taken[0].rows
        while queue and rows + queue[0].rows <= limit:
            rows += queue[0].rows
            taken.append(queue.popleft())
        return key, taken

    def _next_deadline(self) -> float | None:
        starts = [q[0].enqueued for q in self._queues.values() if q]
        return min(starts) + self.max_wait_s if starts else None

    def _dispatch_forever(self) -> None:
        with self._cond:
            while True:
                if self._free == 0:
                    self._cond.wait()
                    continue
                batch = self._ready(time.monotonic())
                if batch is not None:
                    self._free -= 1
                    self._pool.submit(self._send, *batch)
                    continue
                if self._closed and not any(self._queues.values()):
                    return
                deadline = self._next_deadline()
                self._cond.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _client(self) -> InferenceClient:
        client: InferenceClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._make_client()
            with self._cond:
                self._clients.append(client)
        return client

    def _send(self, key: Signature, batch: list[_Request]) -> None:
        try:
            self._call(key, batch)
        finally:
            with self._cond:
                self._free += 1
                self._cond.notify_all()

    def _call(self, key: Signature, batch: list[_Request]) -> None:
        model, version = key[0], key[1]
        total = sum(r.rows for r in batch)
        inputs = batch[0].inputs if len(batch) == 1 else {
            name: np.concatenate([r.inputs[name] for r in batch]) for name in batch[0].inputs
        }
        try:
            outputs = self._client().infer(model, version, inputs)
        except (InferenceRejected, OutOfMemory) as exc:
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            # Each alone: only the request at fault fails, and a merged batch too large for
            # the device's memory becomes the callers' own smaller batches.
            if isinstance(exc, OutOfMemory):
                with self._cond:
                    self.stats.oom_splits += 1
            for request in batch:
                self._call(key, [request])
            return
        except BaseException as exc:  # noqa: BLE001 - every caller of the batch gets it
            for request in batch:
                request.future.set_exception(exc)
            return
        with self._cond:
            self.stats.calls += 1
            self.stats.rows += total
            self.stats.merged_calls += len(batch) > 1
        if self._observe is not None:
            self._observe(model, total)
        if len(batch) == 1:
            batch[0].future.set_result(outputs)
            return
        wrong = {k: list(v.shape) for k, v in outputs.items() if v.ndim == 0 or len(v) != total}
        if wrong:
            error = ComponentError(
                f"{model}:{version} answered {total} merged rows with outputs of other lengths; "
                "a model served with max_batch_size > 0 must return one row per input row",
                model=f"{model}:{version}", outputs=wrong,
            )
            for request in batch:
                request.future.set_exception(error)
            return
        start = 0
        for request in batch:
            stop = start + request.rows
            request.future.set_result({name: out[start:stop] for name, out in outputs.items()})
            start = stop


__all__ = ["BatchStats", "BatchingClient"]
