"""The client's own error tree. httpx errors are translated at the boundary (http.py), so the
strategy only ever sees these, and each one carries the fallback `reason` it is counted under."""

from __future__ import annotations


class RouteIQClientError(Exception):
    """Base of everything this package raises."""

    reason = "error"


class ConfigError(RouteIQClientError, ValueError):
    reason = "config"


class SidecarError(RouteIQClientError):
    """The sidecar could not give a usable answer. Always handled by falling back."""

    reason = "sidecar_error"
    # Whether this failure says something about the sidecar's health (and so feeds the
    # circuit breaker), or only about this one request (e.g. a 422 for its candidates).
    trips_circuit = True


class SidecarTimeout(SidecarError):
    reason = "timeout"


class SidecarUnavailable(SidecarError):
    """Connection refused/reset, DNS, TLS: nothing answered."""

    reason = "connect_error"


class SidecarOverloaded(SidecarError):
    """503/429: the sidecar is up but shedding load."""

    reason = "overloaded"


class SidecarHTTPError(SidecarError):
    """Any other non-2xx status."""

    reason = "http_error"

    def __init__(self, status: int, message: str, error_type: str | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.error_type = error_type  # the service's `error.type` (`unknown_profile`, ...)
        # A 4xx is about this request (bad input, no candidate fits the profile); the next
        # request may well succeed, so it does not count against the sidecar's health. 401/403
        # are the exception: a missing or wrong token fails every request alike, so they trip
        # the circuit and show up as their own fallback reason.
        if status in (401, 403):
            self.trips_circuit, self.reason = True, "unauthorized"
        else:
            self.trips_circuit = not 400 <= status < 500
            if not self.trips_circuit:
                self.reason = "rejected"


class SidecarBadResponse(SidecarError):
    """2xx, but not JSON, or JSON without a usable deployment_id."""

    reason = "bad_response"


class SidecarUnknownDeployment(SidecarBadResponse):
    """The answer names a deployment that is not among the healthy ones we offered."""

    reason = "unknown_deployment"
