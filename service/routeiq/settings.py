"""Every setting the service reads, in one place: `ROUTEIQ_*` env vars, optionally a YAML file.

This is the only module that reads the environment. Everything else receives a `Settings`.
Precedence: init kwargs > environment > YAML file (`ROUTEIQ_CONFIG_FILE`) > defaults.

`load_settings` is how a command builds them: any problem (a bad value, a missing file, an unknown
YAML key) becomes one `SettingsError` line naming the variable or file and what would be valid.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from routeiq.decision import schemas
from routeiq.decision.names import STRATEGY_NAME_RULE, is_strategy_name
from routeiq.errors import ConfigError

PREFIX = "ROUTEIQ_"
CONFIG_FILE_VARIABLE = "ROUTEIQ_CONFIG_FILE"
# ROUTEIQ_* names in a service's environment that are not settings and not typos: the client's
# own variables (a gateway and the service may share one environment), and the variables
# Kubernetes injects for a Service named `routeiq` (service links).
_NOT_SETTINGS = re.compile(
    r"^ROUTEIQ_(CLIENT_.*|SERVICE_HOST|SERVICE_PORT(_.*)?|PORT_\d+_(TCP|UDP|SCTP)(_.*)?)$"
)


class SettingsError(ConfigError):
    """A setting cannot be used; the message is one line naming the variable or file."""


def variable(field_name: str) -> str:
    return PREFIX + field_name.upper()


def closest(name: str, valid: list[str]) -> str:
    """' (did you mean X?)' for the closest valid name, or '' when none is close."""
    match = difflib.get_close_matches(name, valid, n=1, cutoff=0.75)
    return f" (did you mean {match[0]}?)" if match else ""


def default_models_path() -> Path:
    """The bundled models folder, installed with the package as `routeiq.models` (the repository's
    top-level `models/`; an editable install maps it there). ROUTEIQ_MODELS_PATH overrides it."""
    return Path(str(resources.files("routeiq.models")))


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by ROUTEIQ_CONFIG_FILE (keys are field names, lower case)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = os.environ.get(CONFIG_FILE_VARIABLE)
        self._data: dict[str, Any] = {}
        if path:
            where = f"{CONFIG_FILE_VARIABLE}={path!r}"
            try:
                loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise SettingsError(f"{where}: no such file") from None
            except (OSError, yaml.YAMLError) as exc:
                reason = " ".join(str(exc).split())  # YAML errors span lines
                raise SettingsError(f"{where} cannot be read: {reason}") from None
            if loaded is not None and not isinstance(loaded, dict):
                raise SettingsError(f"{where} must hold a mapping of setting names to values")
            self._data = {str(k).lower(): v for k, v in (loaded or {}).items()}
            # A typo in the file is an error, not a default silently kept: the file is ours alone.
            known = sorted(settings_cls.model_fields)
            for key in self._data:
                if key not in settings_cls.model_fields:
                    raise SettingsError(
                        f"{where}: unknown key {key!r}{closest(key, known)}; keys are setting names "
                        "in lower case without ROUTEIQ_ (docs/configuration.md)"
                    )

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


class Settings(BaseSettings):
    """RouteIQ configuration. Each field maps to `ROUTEIQ_<NAME>`; docs/configuration.md lists them."""

    model_config = SettingsConfigDict(env_prefix="ROUTEIQ_", extra="forbid", frozen=True)

    # -- serving
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8400, ge=1, le=65535, description="Port to listen on.")
    workers: int = Field(1, ge=1, le=64, description="Uvicorn worker processes.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # -- artifacts
    models_path: Path = Field(default_factory=default_models_path, description="Models folder.")
    embedder_path: Path | None = Field(
        None, description="Folder with manifest.json, model.onnx, tokenizer.json (default: models/embedder)."
    )
    catalog_file: Path | None = Field(None, description="User catalog YAML, merged over the bundled one.")
    profiles_file: Path | None = Field(None, description="User profiles YAML, merged over built-ins.")
    prototypes_file: Path | None = Field(
        None, description="Extra prototype prompts YAML; centroids are rebuilt at start-up."
    )

    routers_path: Path | None = Field(
        None, description="Folder of trained routers (<name>.onnx + <name>.json; default: models/routers)."
    )

    # -- inference
    ort_intra_op_threads: int = Field(
        1, ge=0, le=64, description="onnxruntime threads per session (0 = ORT default)."
    )
    ort_graph_optimization: Literal["disable", "basic", "extended", "all"] = "all"
    inference_threads: int = Field(2, ge=1, le=64, description="Threads that run embeddings.")
    token_budget: int = Field(64, ge=8, le=512, description="Tokens of prompt text embedded per decision.")
    embedding_cache_size: int | None = Field(
        None,
        ge=0,
        description="Cap on LRU embedding cache entries (0 = off; unset = bounded by memory only).",
    )
    embedding_cache_mb: float = Field(
        16.0, ge=0, description="Memory for the LRU embedding cache per worker, MiB (~1.8 KB per entry)."
    )
    queue_depth_per_thread: int = Field(
        8,
        ge=1,
        le=1024,
        description="Embeddings running or queued per inference thread; past it: 503 for new prompts.",
    )
    max_queue_wait_ms: float = Field(
        15.0,
        ge=0,
        le=60_000,
        description="Longest expected wait for an inference thread; past it: 503 for new prompts.",
    )
    embedding_cache_redis: bool = Field(
        False, description="Share embeddings across workers and replicas through ROUTEIQ_REDIS_URL."
    )
    embedding_cache_redis_ttl_seconds: int = Field(86400, ge=1, description="Lifetime of a shared embedding.")
    embedding_cache_redis_timeout_ms: int = Field(
        20,
        ge=1,
        le=10_000,
        description="Longest wait for the shared embedding cache before embedding locally.",
    )

    # -- decision
    strategy: str = Field("centroid", description="Active strategy: centroid or ml:<router name>.")
    default_profile: str = Field("auto", description="Profile used when the request names none.")
    min_category_confidence: float = Field(
        0.35, ge=0.0, le=1.0, description="Below this the category is reported low-confidence."
    )
    session_ttl_seconds: int = Field(1800, ge=1, description="Session affinity lifetime, refreshed on use.")
    feedback_known_ids: int = Field(
        10_000,
        ge=0,
        description="Deployment ids decided recently whose /feedback outcomes are kept (plus the catalog's).",
    )
    feedback_new_ids_per_minute: int = Field(
        60, ge=0, description="Never-offered deployment ids /feedback lets in per minute and worker."
    )
    feedback_id_ttl_seconds: int = Field(
        3600, ge=1, description="How long a decided deployment id stays known to /feedback."
    )

    # -- learning from production: decisions kept until their /feedback, joined rows on disk
    training_rows_dir: Path | None = Field(
        None, description="Folder for training rows joined from decisions and /feedback; unset = off."
    )
    training_rows_include_prompt: bool = Field(
        False, description="Also store the routed prompt text in training rows (PII!)."
    )
    training_rows_pending: int = Field(
        10_000, ge=1, le=1_000_000, description="Decisions kept per worker while they wait for /feedback."
    )
    training_rows_pending_ttl_seconds: float = Field(
        3600.0, gt=0, description="How long a decision waits for its /feedback before it is forgotten."
    )
    training_rows_queue: int = Field(
        1000, ge=1, le=100_000, description="Joined rows waiting for the writer thread; past it: dropped."
    )
    training_rows_max_file_mb: float = Field(
        64.0, gt=0, description="Size of a rows file before it is rotated, MiB."
    )
    training_rows_max_files: int = Field(
        8, ge=1, le=10_000, description="Rotated rows files kept in the folder (oldest deleted first)."
    )

    # -- premium budget (online): keep the share of decisions that go to premium-tier models at or
    # under a target over a sliding window (shared across replicas through the state backend).
    premium_share_target: float | None = Field(
        None, ge=0.0, le=1.0, description="Most share of decisions on premium models; unset = off."
    )
    premium_share_window_seconds: int = Field(
        300, ge=10, le=86_400, description="Sliding window over which the premium share is counted."
    )
    premium_share_profiles: list[str] = Field(
        default_factory=lambda: ["auto"], description="Profiles the premium budget applies to."
    )

    # -- limits
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest request body accepted.")
    max_messages: int = Field(
        512, ge=1, le=schemas.MAX_MESSAGES_CEILING, description="Most messages per request."
    )
    max_batch_size: int = Field(
        64, ge=1, le=schemas.MAX_BATCH_CEILING, description="Most requests per /route/batch call."
    )
    max_candidates: int = Field(
        256, ge=1, le=schemas.MAX_CANDIDATES_CEILING, description="Most candidates per request."
    )
    # -- limits on a connection, applied before anything it sends is trusted (http/connections.py)
    max_header_bytes: int = Field(
        32_768, ge=1024, description="Most bytes of request line and headers (414/431 above)."
    )
    max_headers: int = Field(100, ge=8, description="Most header fields per request (431 above).")
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="Time to send a complete request line and headers (408 after)."
    )
    body_timeout_seconds: float = Field(10.0, gt=0, description="Time to send a body after its headers.")
    max_connections: int = Field(
        1024, ge=1, description="Open connections per worker; past it the longest-waiting one is closed."
    )
    max_concurrent_requests: int = Field(
        64, ge=1, description="Decisions in flight (running or queued) before answering 503."
    )

    # -- limits on request content: each violation is a 413 naming the setting, so one request
    # cannot cost more than the operator allows
    max_tools: int = Field(
        128, ge=0, le=schemas.MAX_TOOLS_CEILING, description="Most tool definitions per request."
    )
    max_content_parts: int = Field(
        64, ge=1, le=schemas.MAX_CONTENT_PARTS_CEILING, description="Most content parts in one message."
    )
    max_message_chars: int = Field(
        262_144, ge=1, description="Most characters of text in one message, prompt or input item."
    )
    max_total_chars: int = Field(
        1_048_576, ge=1, description="Most characters of text in one request, all messages together."
    )
    max_json_depth: int = Field(
        32, ge=2, le=256, description="Deepest nesting of free-form JSON (tools, metadata, extra fields)."
    )

    # -- security and lifecycle
    auth_tokens: SecretStr | None = Field(
        None, description="Bearer tokens as 'name:token,name:token'; set = /route, /feedback need one."
    )
    auth_tokens_file: Path | None = Field(
        None,
        description="YAML/JSON mapping of client name to bearer token(s) (e.g. a mounted secret); "
        "re-read when it changes.",
    )
    tenants_file: Path | None = Field(
        None, description="YAML: per-tenant weight, quota, default profile, strategy and files (auth on)."
    )
    tenant_max_feedback_outcomes_per_second: float | None = Field(
        None,
        gt=0,
        description="Each client tenant's /feedback outcomes per second unless the tenants file sets "
        "its own (auth on); unset = none.",
    )
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins allowed by CORS, comma-separated; empty = CORS off.",
    )
    log_format: Literal["json", "text"] = Field("json", description="json: one JSON object per line.")
    log_prompts: bool = Field(False, description="Put the routed prompt text in decision logs (PII!).")
    drain_timeout_seconds: float = Field(
        10.0, ge=0, le=600, description="On SIGTERM, how long in-flight requests may take to finish."
    )
    drain_delay_seconds: float = Field(
        0.0, ge=0, le=120, description="On SIGTERM, keep serving this long (readiness false) before closing."
    )

    # -- state
    redis_url: str | None = Field(None, description="Redis URL for shared state; unset = in-memory.")
    namespace: str = Field("default", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Redis key namespace.")
    # A decision makes its Redis calls one after another, and the first one to time out ends
    # Redis for that decision: the timeout is what a stall adds to one decision, and it has to
    # fit inside the client's deadline (50 ms by default) next to the decision itself.
    redis_timeout_ms: int = Field(
        15, ge=1, le=10_000, description="Per-operation Redis timeout; past it the decision uses local state."
    )
    redis_admin_timeout_ms: int = Field(
        2000,
        ge=1,
        le=60_000,
        description="Redis timeout off the decision path: admin writes and readouts, config loads, probes.",
    )
    redis_sentinels: str | None = Field(
        None, description="Sentinels as 'host:port,host:port'; set = find the primary through Sentinel."
    )
    redis_sentinel_service: str = Field("mymaster", description="Name of the primary the Sentinels watch.")
    redis_sentinel_username: str | None = Field(None, description="ACL user for the Sentinels themselves.")
    redis_sentinel_password: SecretStr | None = Field(None, description="Password for the Sentinels.")
    redis_cluster: bool = Field(
        False, description="ROUTEIQ_REDIS_URL names one node of a Redis Cluster; use the cluster client."
    )
    redis_username: str | None = Field(None, description="ACL user on Redis (instead of one in the URL).")
    redis_password: SecretStr | None = Field(None, description="Redis password (instead of one in the URL).")
    redis_tls: bool = Field(
        False, description="TLS to Redis nodes found through Sentinel (a URL says rediss://)."
    )
    redis_tls_ca_file: Path | None = Field(
        None, description="CA bundle that signed the Redis server certificates."
    )
    redis_max_connections: int = Field(
        32, ge=1, le=1024, description="Redis connections per worker; a burst waits for a free one."
    )
    redis_retry_seconds: float = Field(
        1.0, gt=0, le=300, description="After a Redis failure, use local state this long before retrying."
    )
    state_sync_interval_ms: int = Field(
        250, ge=10, le=10_000, description="How often each worker polls shared config (admin changes)."
    )

    # -- circuit breakers (fed by POST /feedback)
    breaker_enabled: bool = Field(True, description="Demote deployments whose failure rate trips a breaker.")
    breaker_window_seconds: float = Field(60.0, gt=0, description="Window in which outcomes are counted.")
    breaker_min_requests: int = Field(5, ge=1, description="Outcomes in the window before it may open.")
    breaker_failure_rate: float = Field(0.5, gt=0, le=1, description="Failure share that opens it.")
    breaker_open_seconds: float = Field(30.0, gt=0, description="Open time before half-open probes.")
    breaker_view_cache_ms: int = Field(
        100, ge=0, le=10_000, description="Redis only: reuse the breaker view this long (0 = every decision)."
    )
    breaker_half_open_probes: int = Field(
        1, ge=1, le=100, description="Probe decisions allowed half-open; that many successes close it."
    )
    deployment_state_ttl_seconds: float = Field(
        7 * 86400.0,
        ge=60,
        description="Redis only: a deployment silent this long loses its stats and stale breaker entry.",
    )

    # -- experiments, admin, introspection
    ab_testing_enabled: bool = Field(True, description="Assign requests to running A/B experiments.")
    admin_key: SecretStr | None = Field(
        None, min_length=16, description="Key for /admin/* (unset = admin API disabled)."
    )
    recent_decisions_size: int = Field(
        1000, ge=0, le=100_000, description="Recent decisions kept per worker for /admin/decisions."
    )
    prometheus_multiproc_dir: Path | None = Field(
        None,
        validation_alias=AliasChoices(
            "prometheus_multiproc_dir", "ROUTEIQ_PROMETHEUS_MULTIPROC_DIR", "PROMETHEUS_MULTIPROC_DIR"
        ),
        description="Set (by `routeiq serve --workers N` or you) = Prometheus multiprocess collection.",
    )
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Also serve /metrics alone on this port (sidecar scraping)."
    )
    tracing_enabled: bool = Field(
        False, description="OpenTelemetry traces over OTLP (the otel extra; OTEL_* variables configure it)."
    )
    metrics_host: str = Field("0.0.0.0", description="Address the metrics-only listener binds.")  # noqa: S104

    @field_validator("log_level", "log_format", "ort_graph_optimization", mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        # ROUTEIQ_LOG_LEVEL=INFO is what people write (uvicorn and Python logging take it).
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _paths_exist(self) -> Settings:
        files = ("catalog_file", "profiles_file", "prototypes_file", "auth_tokens_file")
        folders = ("models_path", "embedder_path", "routers_path")
        for name in (*files, *folders):
            path: Path | None = getattr(self, name)
            if path is None:
                continue
            kind = "file" if name in files else "folder"
            if not path.exists():
                raise ValueError(f"{variable(name)}={str(path)!r}: no such {kind}")
            if (kind == "file") != path.is_file():
                raise ValueError(f"{variable(name)}={str(path)!r}: not a {kind}")
        return self

    @field_validator("redis_url")
    @classmethod
    def _redis_url_shape(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value or None

    @field_validator("strategy")
    @classmethod
    def _strategy_shape(cls, value: str) -> str:
        if not is_strategy_name(value):
            raise ValueError(STRATEGY_NAME_RULE)
        return value

    @model_validator(mode="after")
    def _shared_cache_needs_redis(self) -> Settings:
        if self.embedding_cache_redis and not self.redis_configured:
            raise ValueError(
                "ROUTEIQ_EMBEDDING_CACHE_REDIS=true needs ROUTEIQ_REDIS_URL or ROUTEIQ_REDIS_SENTINELS"
            )
        if self.redis_sentinels and self.redis_cluster:
            raise ValueError("ROUTEIQ_REDIS_SENTINELS and ROUTEIQ_REDIS_CLUSTER exclude each other")
        if self.redis_cluster and not self.redis_url:
            raise ValueError("ROUTEIQ_REDIS_CLUSTER=true needs ROUTEIQ_REDIS_URL (any node of the cluster)")
        return self

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinels_shape(cls, value: str | None) -> str | None:
        if value:
            for item in value.split(","):
                host, _, port = item.strip().rpartition(":")
                if not host or not port.isdigit():
                    raise ValueError(f"{item.strip()!r} is not host:port")
        return value or None

    @property
    def redis_configured(self) -> bool:
        return bool(self.redis_url or self.redis_sentinels)

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        out = []
        for item in (self.redis_sentinels or "").split(","):
            host, _, port = item.strip().rpartition(":")
            if host:
                out.append((host.strip("[]"), int(port)))
        return out

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @property
    def embedder_dir(self) -> Path:
        return self.embedder_path or self.models_path / "embedder"

    @property
    def trained_routers_dir(self) -> Path:
        return self.routers_path or self.models_path / "routers"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlFileSource(settings_cls))


def _describe(exc: ValidationError, overrides: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """One line per problem, joined: where the value came from, the value, what is valid."""
    problems = []
    yaml_file = environ.get(CONFIG_FILE_VARIABLE)
    for error in exc.errors(include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        loc = error["loc"]
        if not loc:  # a check across fields: its message names the variables itself
            problems.append(message)
            continue
        name = str(loc[0])
        if name in overrides:
            source = f"--{name.replace('_', '-')}={overrides[name]!r}"
        elif variable(name) in environ:
            source = f"{variable(name)}={environ[variable(name)]!r}"
        elif yaml_file:
            source = f"{CONFIG_FILE_VARIABLE}={yaml_file!r}: {name}={error.get('input')!r}"
        else:
            source = f"{variable(name)}={error.get('input')!r}"
        problems.append(f"{source}: {message}")
    return "; ".join(" ".join(p.split()) for p in problems)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (and overrides, e.g. command-line flags), or a
    SettingsError whose message is one line naming what is wrong and what would be valid."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, overrides, os.environ)) from None


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """A warning per ROUTEIQ_* variable that is no setting, naming the closest one.

    Warnings, not errors: the environment is shared (the client's ROUTEIQ_CLIENT_* variables,
    an orchestrator's own), so a name we do not know is not proof of a mistake."""
    environ = os.environ if environ is None else environ
    known = sorted([variable(n) for n in Settings.model_fields] + [CONFIG_FILE_VARIABLE])
    return [
        f"{name} is not a RouteIQ setting and is ignored{closest(name, known)}"
        for name in sorted(environ)
        if name.startswith(PREFIX) and name not in known and not _NOT_SETTINGS.match(name)
    ]
