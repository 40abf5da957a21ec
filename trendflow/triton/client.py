"""The Triton client: one ``infer(model, version, inputs) -> outputs`` over gRPC or HTTP.

Failure policy (DESIGN.md §4–5):

* transient — server unavailable / restarting, HTTP 502/503/504, gRPC ``UNAVAILABLE``,
  ``DEADLINE_EXCEEDED``, ``RESOURCE_EXHAUSTED``: retried ``retries`` times (2 by default) with
  exponential backoff, then :class:`~trendflow.errors.ServiceUnavailable`;
* the model (or that version) is not served: :class:`~trendflow.errors.ModelNotFound` at once;
* authentication / authorisation refused (gRPC ``UNAUTHENTICATED``/``PERMISSION_DENIED``, HTTP
  401/403): :class:`~trendflow.errors.ModelServerAuthFailed` at once;
* the model ran out of memory (its error says so: CUDA / ONNX Runtime allocation failures, a
  Python ``MemoryError``): :class:`~trendflow.errors.OutOfMemory` at once — transient for the
  scheduler, which halves the component's batch and retries (:mod:`trendflow.actors.policy`);
* anything else the server answers (a model rejecting its input):
  :class:`~trendflow.errors.InferenceRejected` at once.

Whether a model exists is asked of the server (``is_model_ready``), never read from an error
message. gRPC may use TLS with a client certificate (mTLS).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from trendflow.errors import (
    ConfigError,
    InferenceRejected,
    ModelNotFound,
    ModelServerAuthFailed,
    OutOfMemory,
    ServiceUnavailable,
)
from trendflow.settings import TritonSettings

_TRANSIENT_GRPC = {"StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED",
                   "StatusCode.RESOURCE_EXHAUSTED"}
_AUTH_GRPC = {"StatusCode.UNAUTHENTICATED", "StatusCode.PERMISSION_DENIED"}
_TRANSIENT_HTTP = {"502", "503", "504"}
_AUTH_HTTP = {"401", "403"}
# How models report exhausted memory through Triton: CUDA, ONNX Runtime (CPU and CUDA
# allocators), PyTorch, CTranslate2 and Python itself.
_OOM_MARKERS = ("out of memory", "failed to allocate memory", "memoryerror", "bad_alloc",
                "bad allocation", "cudaerrormemoryallocation", "cuda_error_out_of_memory")


@runtime_checkable
class InferenceClient(Protocol):
    """What model-backed components need from a model server."""

    def infer(
        self, model: str, version: str, inputs: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Run one request; every output of the model, by name."""
        ...

    def model_config(self, model: str, version: str) -> dict[str, Any]:
        """The model's configuration as JSON (``max_batch_size``, inputs, outputs …)."""
        ...


@dataclass(frozen=True, slots=True)
class ClientTLS:
    """gRPC TLS: the CA that signed the server, and optionally our certificate (mTLS)."""

    ca_cert: Path
    client_cert: Path | None = None
    client_key: Path | None = None

    def __post_init__(self) -> None:
        if (self.client_cert is None) != (self.client_key is None):
            raise ConfigError("TLS client certificate and key must be given together")
        for path in (self.ca_cert, self.client_cert, self.client_key):
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"TLS file {path} does not exist")


class TritonClient:
    """:class:`InferenceClient` on ``tritonclient`` (see the module docstring for retries)."""

    def __init__(
        self,
        url: str,
        *,
        protocol: Literal["grpc", "http"] = "grpc",
        timeout_s: float = 60.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        tls: ClientTLS | None = None,
    ) -> None:
        if tls is not None and protocol != "grpc":
            raise ConfigError("TLS is supported on the gRPC protocol only")
        self.url = url
        self.protocol = protocol
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.tls = tls
        self._client: Any = None
        self._configs: dict[tuple[str, str], dict[str, Any]] = {}

    @classmethod
    def from_settings(cls, settings: TritonSettings) -> TritonClient:
        tls = None
        if settings.tls_ca_cert is not None:
            tls = ClientTLS(settings.tls_ca_cert, settings.tls_client_cert, settings.tls_client_key)
        return cls(
            settings.url,
            protocol=settings.protocol,
            timeout_s=settings.timeout_s,
            retries=settings.retries,
            backoff_s=settings.backoff_s,
            tls=tls,
        )

    def __getstate__(self) -> dict[str, Any]:
        # Connections do not pickle; a copy sent to a worker reconnects on first use.
        state = {k: getattr(self, k) for k in
                 ("url", "protocol", "timeout_s", "retries", "backoff_s", "tls")}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state.pop("url"), **state)  # type: ignore[misc]

    # -- public API ---------------------------------------------------------------------------

    def infer(
        self, model: str, version: str, inputs: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Run ``model`` at ``version`` on ``inputs`` (arrays include the batch dimension)."""
        config = self.model_config(model, version)
        names = [o["name"] for o in config.get("output", [])]
        mod = self._module()
        infer_inputs = []
        for name, array in inputs.items():
            arr = np.ascontiguousarray(array)
            dtype = "BYTES" if arr.dtype.kind in "OUS" else _np_to_triton(arr.dtype)
            if arr.dtype.kind == "U":
                arr = np.vectorize(lambda s: s.encode("utf-8"), otypes=[object])(arr)
            item = mod.InferInput(name, list(arr.shape), dtype)
            item.set_data_from_numpy(arr)
            infer_inputs.append(item)
        outputs = [mod.InferRequestedOutput(n) for n in names]
        result = self._call(
            model,
            version,
            lambda c: c.infer(
                model, infer_inputs, model_version=version, outputs=outputs,
                **self._timeout_kw(),
            ),
        )
        return {n: result.as_numpy(n) for n in names}

    def model_config(self, model: str, version: str) -> dict[str, Any]:
        """The served configuration of ``model`` (cached per model and version)."""
        key = (model, version)
        if key not in self._configs:
            raw = self._call(model, version, lambda c: c.get_model_config(model, version))
            config = raw.get("config", raw) if isinstance(raw, dict) else _grpc_json(raw)
            self._configs[key] = config
        return self._configs[key]

    def max_batch_size(self, model: str, version: str) -> int:
        """The model's ``max_batch_size`` (0 = the model does not batch)."""
        return int(self.model_config(model, version).get("max_batch_size", 0))

    def server_ready(self) -> bool:
        try:
            return bool(self._connect().is_server_ready())
        except Exception:  # noqa: BLE001 - any failure to answer means "not ready"
            return False

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- internals ----------------------------------------------------------------------------

    def _module(self) -> Any:
        if self.protocol == "grpc":
            import tritonclient.grpc as mod
        else:
            import tritonclient.http as mod
        return mod

    def _connect(self) -> Any:
        if self._client is None:
            mod = self._module()
            if self.protocol == "grpc":
                kw: dict[str, Any] = {}
                if self.tls is not None:
                    kw = {
                        "ssl": True,
                        "root_certificates": str(self.tls.ca_cert),
                        "private_key": str(self.tls.client_key) if self.tls.client_key else None,
                        "certificate_chain": (
                            str(self.tls.client_cert) if self.tls.client_cert else None
                        ),
                    }
                self._client = mod.InferenceServerClient(self.url, **kw)
            else:
                self._client = mod.InferenceServerClient(
                    self.url, connection_timeout=self.timeout_s, network_timeout=self.timeout_s
                )
        return self._client

    def _timeout_kw(self) -> dict[str, Any]:
        # gRPC takes a per-call deadline; HTTP's timeouts are set on the client.
        return {"client_timeout": self.timeout_s} if self.protocol == "grpc" else {}

    def _call(self, model: str, version: str, fn: Any) -> Any:
        from tritonclient.utils import InferenceServerException

        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                return fn(self._connect())
            except InferenceServerException as exc:
                kind = self._classify(exc, model, version)
                if kind == "transient" and attempt < self.retries:
                    time.sleep(delay)
                    delay *= 2
                    continue
                self._raise(kind, exc, model, version, attempt + 1)
            except (ConnectionError, OSError) as exc:  # HTTP transport: refused / reset
                if attempt < self.retries:
                    self.close()
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise ServiceUnavailable(
                    f"Triton at {self.url} unreachable after {attempt + 1} attempts: {exc}",
                    url=self.url, model=model, attempts=attempt + 1,
                ) from exc
        raise AssertionError("unreachable")

    def _classify(self, exc: Any, model: str, version: str) -> str:
        status = str(exc.status() or "")
        if status in _TRANSIENT_GRPC or status in _TRANSIENT_HTTP:
            return "transient"
        if status in _AUTH_GRPC or status in _AUTH_HTTP:
            return "auth"
        message = str(exc.message() or "").lower()
        if any(marker in message for marker in _OOM_MARKERS):
            return "oom"
        try:
            client = self._connect()
            if client.is_model_ready(model, version):
                return "rejected"
            # A server that is not ready yet (a restarted Triton loading its models: the local
            # server runs with strict readiness) will serve the model shortly.
            return "missing" if client.is_server_ready() else "transient"
        except Exception:  # noqa: BLE001 - the server went away while we asked
            return "transient"

    def _raise(self, kind: str, exc: Any, model: str, version: str, attempts: int) -> None:
        ref = f"{model}:{version}"
        details = {"url": self.url, "model": ref, "status": str(exc.status() or "")}
        match kind:
            case "transient":
                raise ServiceUnavailable(
                    f"Triton at {self.url} unavailable for {ref} after {attempts} attempts: "
                    f"{exc.message()}", attempts=attempts, **details,
                ) from exc
            case "auth":
                raise ModelServerAuthFailed(
                    f"Triton at {self.url} refused our credentials: {exc.message()}", **details
                ) from exc
            case "oom":
                raise OutOfMemory(
                    f"{ref} ran out of memory on Triton at {self.url}: {exc.message()}", **details
                ) from exc
            case "missing":
                raise ModelNotFound(
                    f"model {ref} is not served by Triton at {self.url} "
                    "(check triton_repo/ and `trendflow models build`)", **details,
                ) from exc
            case _:
                raise InferenceRejected(
                    f"{ref} rejected the request: {exc.message()}", **details
                ) from exc


def _np_to_triton(dtype: np.dtype) -> str:
    from tritonclient.utils import np_to_triton_dtype

    name = np_to_triton_dtype(dtype)
    if name is None:
        raise ConfigError(f"numpy dtype {dtype} has no Triton equivalent")
    return str(name)


def _grpc_json(message: Any) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict

    data = MessageToDict(message, preserving_proto_field_name=True)
    config = data.get("config", data)
    if "max_batch_size" in config:
        config["max_batch_size"] = int(config["max_batch_size"])
    return config


def encode_texts(texts: Sequence[str]) -> np.ndarray:
    """Texts for a model's UTF-8 input: one row per text, uint8, NUL-padded ``[n, L]``.

    The python backend of the local server cannot pass Triton string tensors under numpy 2, so
    every text crosses the boundary as bytes (docs/triton.md).
    """
    encoded = [t.encode("utf-8") for t in texts]
    if any(b"\0" in e for e in encoded):
        raise InferenceRejected("text contains a NUL character")
    width = max([len(e) for e in encoded] + [1])
    out = np.zeros((len(encoded), width), np.uint8)
    for i, e in enumerate(encoded):
        out[i, : len(e)] = np.frombuffer(e, np.uint8)
    return out


def decode_json_rows(array: np.ndarray) -> list[Any]:
    """A model's JSON output (one UTF-8 document per row, space-padded) as Python objects."""
    import json

    return [json.loads(row.tobytes().decode("utf-8")) for row in np.atleast_2d(array)]
