"""routeiq-client: ask a RouteIQ sidecar which LiteLLM deployment should serve a request,
without ever letting the sidecar break the request.

The LiteLLM names (`RouteIQRouting`, `install`) are imported lazily so that
`import routeiq_client` does not import litellm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .breaker import CircuitBreaker
from .config import ClientConfig
from .decide import Decider, Fallback, Ranking
from .errors import (
    ConfigError,
    RouteIQClientError,
    SidecarBadResponse,
    SidecarError,
    SidecarHTTPError,
    SidecarOverloaded,
    SidecarTimeout,
    SidecarUnavailable,
    SidecarUnknownDeployment,
)
from .feedback import FeedbackReporter
from .http import RouteIQClient
from .metrics import ClientMetrics

if TYPE_CHECKING:
    from .litellm_strategy import RouteIQRouting, install

__version__ = "0.1.0"

__all__ = [
    "CircuitBreaker",
    "ClientConfig",
    "ClientMetrics",
    "ConfigError",
    "Decider",
    "Fallback",
    "FeedbackReporter",
    "Ranking",
    "RouteIQClient",
    "RouteIQClientError",
    "RouteIQRouting",
    "SidecarBadResponse",
    "SidecarError",
    "SidecarHTTPError",
    "SidecarOverloaded",
    "SidecarTimeout",
    "SidecarUnavailable",
    "SidecarUnknownDeployment",
    "__version__",
    "install",
]

_LAZY = frozenset({"RouteIQRouting", "install"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import litellm_strategy

        return getattr(litellm_strategy, name)
    raise AttributeError(f"module 'routeiq_client' has no attribute {name!r}")
