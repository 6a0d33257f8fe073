"""Client settings: one frozen dataclass, read from `ROUTEIQ_CLIENT_*` env vars only on request.

The proxy recipe has no place to pass constructor arguments (LiteLLM imports a callback
instance by name), so `ClientConfig.from_env()` is how a proxy deployment is configured.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import InitVar, dataclass, fields

from .errors import ConfigError

ENV_PREFIX = "ROUTEIQ_CLIENT_"
ON_REJECT = ("strict", "fail-open")
MAX_FEEDBACK_BATCH = 1000  # the most outcomes one POST /feedback accepts (the service's MAX_OUTCOMES)
# How each setting may be, for the one-line error that names it.
_RANGES = {
    "deadline_ms": "0 < ms <= 60000",
    "failure_threshold": ">= 1",
    "open_seconds": "> 0",
    "feedback_queue": ">= 1",
    "feedback_batch": "1..1000, the most one POST /feedback accepts",
    "feedback_interval_s": "> 0",
    "feedback_timeout_s": "> 0",
    "max_connections": ">= 1",
    "on_reject": "strict or fail-open",
    "groups": "comma-separated model group names",
}
# `deadline_ms` was called `budget_ms`, a word the service uses for other things (token budget,
# premium budget). The old keyword and variable still work, with a DeprecationWarning.
_OLD_DEADLINE_ENV = ENV_PREFIX + "BUDGET_MS"


@dataclass(frozen=True)
class ClientConfig:
    # Where the sidecar listens. Same pod / same host: loopback, so no TLS and no DNS.
    url: str = "http://127.0.0.1:8400"
    # Deadline of one routing call (connect + send + answer), in milliseconds; past it the
    # client falls back to its own choice.
    deadline_ms: float = 50.0
    # Consecutive sidecar failures that open the circuit, and how long it stays open.
    failure_threshold: int = 5
    open_seconds: float = 10.0
    # Outcome feedback (POST /feedback): on/off, queue bound, batch size, flush period.
    feedback: bool = True
    feedback_queue: int = 10_000
    feedback_batch: int = 200
    feedback_interval_s: float = 1.0
    feedback_timeout_s: float = 2.0
    # Idle keep-alive connections kept to the sidecar.
    max_connections: int = 32
    # Bearer token for a shared RouteIQ service with auth on (empty: send none, sidecar mode).
    token: str = ""
    # The model groups RouteIQ routes (opt-in); every other group keeps LiteLLM's own selection.
    groups: tuple[str, ...] = ()
    # When the sidecar refuses a request (unknown profile, no candidate fits the profile):
    # `strict` fails it with a 400 naming why; `fail-open` serves it with LiteLLM's own selection,
    # an `x-routeiq-fallback` header and a WARNING every time.
    on_reject: str = "strict"
    # Deprecated spelling of `deadline_ms` (keyword only in practice; not a field).
    budget_ms: InitVar[float | None] = None

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def __repr__(self) -> str:  # never print the token
        shown = {
            f.name: ("***" if f.name == "token" and self.token else getattr(self, f.name))
            for f in fields(self)
        }
        return f"ClientConfig({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def __post_init__(self, budget_ms: float | None) -> None:
        if budget_ms is not None:
            warnings.warn(
                "ClientConfig(budget_ms=...) is deprecated; use deadline_ms", DeprecationWarning, stacklevel=3
            )
            if self.deadline_ms not in (budget_ms, ClientConfig.deadline_ms):
                raise ConfigError(f"budget_ms={budget_ms!r} and deadline_ms={self.deadline_ms!r} disagree")
            object.__setattr__(self, "deadline_ms", float(budget_ms))
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"{_env('url')}={self.url!r} must start with http:// or https://")
        if "\n" in self.token or "\r" in self.token or self.token != self.token.strip():
            raise ConfigError(f"{_env('token')} has surrounding whitespace or a line break")
        object.__setattr__(self, "groups", tuple(self.groups))
        checks = {
            "deadline_ms": 0 < self.deadline_ms <= 60_000,
            "failure_threshold": self.failure_threshold >= 1,
            "open_seconds": self.open_seconds > 0,
            "feedback_queue": self.feedback_queue >= 1,
            "feedback_batch": 1 <= self.feedback_batch <= MAX_FEEDBACK_BATCH,
            "feedback_interval_s": self.feedback_interval_s > 0,
            "feedback_timeout_s": self.feedback_timeout_s > 0,
            "max_connections": self.max_connections >= 1,
            "on_reject": self.on_reject in ON_REJECT,
            "groups": all(isinstance(g, str) and g and g == g.strip() for g in self.groups),
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"{_env(name)}={getattr(self, name)!r} is out of range ({_RANGES[name]})")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientConfig:
        """Build from `ROUTEIQ_CLIENT_<FIELD>` variables; unset ones keep their defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, raw, type(getattr(cls, f.name)))
        old = env.get(_OLD_DEADLINE_ENV)
        if old and "deadline_ms" not in values:
            message = f"{_OLD_DEADLINE_ENV} is deprecated; use {ENV_PREFIX}DEADLINE_MS"
            warnings.warn(message, DeprecationWarning, stacklevel=2)
            values["deadline_ms"] = _parse("budget_ms", old, float)
        return cls(**values)  # type: ignore[arg-type]


def _env(name: str) -> str:
    """Errors name the variable an operator sets (the field is its lower-case tail)."""
    return ENV_PREFIX + name.upper()


# Reading the old name gives the deadline (the InitVar's class default would otherwise say None).
ClientConfig.budget_ms = property(lambda self: self.deadline_ms)  # type: ignore[attr-defined]


def _parse(name: str, raw: str, kind: type) -> object:
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(raw)
            return lowered in {"1", "true", "yes", "on"}
        if kind is tuple:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return kind(raw.strip())
    except ValueError as exc:
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}") from exc
