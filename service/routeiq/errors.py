"""One error taxonomy and one status map.

Every error a caller can cause is a `RouteIQError`; `http/errors.py` registers one handler for
the base class and renders `{"error": {"type", "message", "field"}}` with the status below.
Dependency errors (onnxruntime, redis, yaml) are translated at the boundary with `raise ... from exc`.
"""

from __future__ import annotations

from typing import Any, ClassVar


class RouteIQError(Exception):
    status: ClassVar[int] = 500
    type: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra

    def to_body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        error.update(self.extra)
        return {"error": error}


class BadRequest(RouteIQError):
    status = 400
    type = "bad_request"


class Unauthorized(RouteIQError):
    status = 401
    type = "unauthorized"


class Forbidden(RouteIQError):
    status = 403
    type = "forbidden"


class NotFound(RouteIQError):
    status = 404
    type = "not_found"


class MethodNotAllowed(RouteIQError):
    status = 405
    type = "method_not_allowed"


class Conflict(RouteIQError):
    """The target exists but its state does not allow the change (e.g. ramping a stopped experiment)."""

    status = 409
    type = "conflict"


class PayloadTooLarge(RouteIQError):
    status = 413
    type = "payload_too_large"


class InvalidRequest(RouteIQError):
    status = 422
    type = "invalid_request"


class UnknownProfile(InvalidRequest):
    type = "unknown_profile"


class NoCandidate(InvalidRequest):
    """No candidate satisfies the profile and the request's needs; `excluded` says why each fell."""

    type = "no_candidate"


class Overloaded(RouteIQError):
    status = 503
    type = "overloaded"


class TenantOverShare(RouteIQError):
    """Capacity is short and this tenant already holds its share of it: the tenant sending the
    most is refused first, so the others keep being served."""

    status = 429
    type = "tenant_over_share"


class TenantOverQuota(RouteIQError):
    """The tenant's configured decisions per second are used up."""

    status = 429
    type = "tenant_over_quota"


class DeadlineUnmet(RouteIQError):
    """The caller's deadline (`X-RouteIQ-Deadline-Ms`) would pass before the decision is made:
    refused at once rather than answered after the caller has given up."""

    status = 503
    type = "deadline_exceeded"

    def __init__(self) -> None:
        super().__init__(
            "the decision would not be ready before the caller's deadline "
            "(X-RouteIQ-Deadline-Ms); retry shortly",
            retry_after=1,
        )


class NotReady(RouteIQError):
    status = 503
    type = "not_ready"


class TenantUnavailable(NotReady):
    """The caller's tenant has its own files (tenants file) and they did not load: it is not
    served until they do; every other tenant is."""

    type = "tenant_unavailable"


class StateUnavailable(RouteIQError):
    """Shared state (Redis) cannot take a change now. Only admin writes raise it: routing
    never fails because of Redis, it goes on with local state."""

    status = 503
    type = "state_unavailable"


class ArtifactError(RouteIQError):
    """A model file, manifest or config artifact is missing, altered or unusable (start-up)."""

    type = "artifact_error"


class ConfigError(RouteIQError):
    type = "config_error"
