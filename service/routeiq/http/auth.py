"""Request authentication, one mechanism per kind of caller.

Clients (`/route`, `/route/batch`, `/feedback`) — `AuthMiddleware`: clients are configured as
`name -> token` (ROUTEIQ_AUTH_TOKENS and/or ROUTEIQ_AUTH_TOKENS_FILE). The name is what logs and
metrics show; a token never leaves this module. With no tokens configured client auth is off
(sidecar mode on 127.0.0.1); `startup_warnings` says so loudly when the service listens beyond
loopback. Checked in ASGI middleware, before the body is read or parsed: an unauthenticated
caller cannot make the service buffer a megabyte, and gets 401/403 whatever its body holds.
401 = no usable credentials (missing header, not `Bearer`, empty); 403 = a token we do not know.

Operators (`/admin/*`) — `require_admin`, a FastAPI dependency: the key comes as
`Authorization: Bearer <key>` or `X-RouteIQ-Admin-Key`, and is compared in constant time.
Missing -> 401, wrong -> 403, no key configured (ROUTEIQ_ADMIN_KEY unset) -> 403: the admin API
is off unless someone turns it on.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Protocol

from fastapi import Header, Query, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from routeiq.artifacts.files import load_yaml
from routeiq.errors import ConfigError, Forbidden, Unauthorized
from routeiq.http.errors import send_error
from routeiq.http.middleware import header_of
from routeiq.observability.metrics import Metrics
from routeiq.settings import Settings

# Names become metric label values and log fields: keep them short and plain.
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MIN_TOKEN_CHARS = 16
# Path prefixes that need a client token. `/v1` (stats, catalog, profiles) is per tenant: with
# auth on, a caller without a token sees none of it. Health, readiness, metrics and docs stay
# open (probes and scrapers carry no tokens); admin endpoints have their own key (`require_admin`).
PROTECTED_PREFIXES = ("/route", "/feedback", "/v1")


@dataclass(frozen=True)
class TokenSet:
    """sha256 digests of the configured tokens, by client name (the plain tokens are not kept).

    A client may hold several tokens at once: during a rotation the old and the new one are
    both valid until the old one is removed. `admins` are tenant admin tokens: `/admin/*` for
    that one client (tenant) only."""

    digests: Mapping[str, tuple[bytes, ...]]
    admins: Mapping[str, tuple[bytes, ...]] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.digests)

    def identify(self, token: str) -> str | None:
        """The client name for `token`, or None."""
        return _find(self.digests, token)

    def identify_admin(self, token: str) -> str | None:
        """The tenant whose admin token `token` is, or None."""
        return _find(self.admins, token)

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenSet:
        pairs: list[tuple[str, str, str]] = []  # (name, token, where)
        admin_pairs: list[tuple[str, str, str]] = []
        if settings.auth_tokens is not None:
            pairs += _parse_env(settings.auth_tokens.get_secret_value())
        if settings.auth_tokens_file is not None:
            clients, admins = _parse_file(settings.auth_tokens_file)
            pairs += clients
            admin_pairs += admins
        seen: dict[bytes, str] = {}
        digests = _digests(pairs, seen, "client")
        admins_by_name = _digests(admin_pairs, seen, "admin")
        for name in admins_by_name:
            if name not in digests:
                raise ConfigError(f"admins: {name!r} has an admin token but no client token")
        return cls(digests, admins_by_name)


def _find(table: Mapping[str, tuple[bytes, ...]], token: str) -> str | None:
    """Compares against every digest with `hmac.compare_digest` and never stops early, so
    timing says nothing about the tokens."""
    presented = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
    found: str | None = None
    for name, digests in table.items():
        for digest in digests:
            if hmac.compare_digest(presented, digest):
                found = name
    return found


def _digests(
    pairs: list[tuple[str, str, str]], seen: dict[bytes, str], kind: str
) -> dict[str, tuple[bytes, ...]]:
    digests: dict[str, tuple[bytes, ...]] = {}
    for name, token, where in pairs:
        if not _NAME.match(name):
            raise ConfigError(f"{where}: client name {name!r} must match {_NAME.pattern}")
        if len(token) < MIN_TOKEN_CHARS or token != token.strip():
            raise ConfigError(
                f"{where}: the {kind} token for {name!r} must be at least {MIN_TOKEN_CHARS} characters "
                "without surrounding spaces; make one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        if digest in seen:
            raise ConfigError(f"{where}: {seen[digest]!r} and {kind} {name!r} share one token")
        seen[digest] = f"{kind} {name}"
        digests[name] = (*digests.get(name, ()), digest)
    return digests


def _parse_env(value: str) -> list[tuple[str, str, str]]:
    where = "ROUTEIQ_AUTH_TOKENS"
    pairs = []
    for item in value.split(","):
        if not item.strip():
            continue
        name, sep, token = item.strip().partition(":")
        if not sep:
            raise ConfigError(f"{where}: each entry must be 'name:token' (an entry has no ':')")
        pairs.append((name.strip(), token, where))
    return pairs


Pairs = list[tuple[str, str, str]]


def _parse_file(path: Path) -> tuple[Pairs, Pairs]:
    """(client tokens, tenant admin tokens). A name maps to one token or a list (rotation)."""
    where = f"ROUTEIQ_AUTH_TOKENS_FILE={path}"
    try:
        data = load_yaml(path, what="auth tokens file")
    except Exception as exc:  # ArtifactError: reword as a config problem naming the setting
        raise ConfigError(f"{where}: {exc}") from exc
    if "clients" in data or "admins" in data:
        clients, admins = data.get("clients", {}), data.get("admins", {})
    else:
        clients, admins = data, {}  # a bare name -> token mapping (e.g. a Kubernetes secret)
    return _entries(clients, where, "clients"), _entries(admins, where, "admins")


def _entries(table: object, where: str, key: str) -> Pairs:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: {key!r} must map client names to tokens")
    pairs = []
    for name, value in table.items():
        tokens = value if isinstance(value, list) else [value]
        if not tokens or not all(isinstance(t, str) for t in tokens):
            raise ConfigError(f"{where}: the token for {name!r} must be a string or a list of strings")
        pairs += [(str(name), t, where) for t in tokens]
    return pairs


def bearer_token(header: str | None) -> tuple[str | None, str]:
    """(token, problem): the token of an `Authorization: Bearer <token>` header, or why not."""
    if header is None:
        return None, "missing"
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None, "malformed"
    return token, ""


def is_protected(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PROTECTED_PREFIXES)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def startup_warnings(settings: Settings, tokens: TokenSet) -> list[str]:
    """What an operator must hear before the first request: listening beyond loopback with no
    tokens means anyone who reaches the port can ask for decisions and report outcomes."""
    warnings = []
    if not tokens.enabled and not is_loopback(settings.host):
        warnings.append(
            f"authentication is OFF and the service listens on {settings.host}: anyone who can reach "
            f"port {settings.port} can route and send /feedback. Set ROUTEIQ_AUTH_TOKENS or "
            "ROUTEIQ_AUTH_TOKENS_FILE (shared mode), or listen on 127.0.0.1 (sidecar mode)."
        )
    if settings.log_prompts:
        warnings.append("ROUTEIQ_LOG_PROMPTS is on: prompt text is written to the logs.")
    if not tokens.enabled and settings.tenant_max_feedback_outcomes_per_second is not None:
        warnings.append(
            "ROUTEIQ_TENANT_MAX_FEEDBACK_OUTCOMES_PER_SECOND is set but authentication is off: it "
            "applies to client tenants only (like max_decisions_per_second), so /feedback has no quota."
        )
    return warnings


class Tokens(Protocol):
    """Where the middleware gets the tokens in force (`token_source.TokenSource` reloads them)."""

    def current(self) -> TokenSet: ...


class AuthMiddleware:
    """401/403 for protected paths without a known bearer token; names the client otherwise.
    The client name is the tenant: `scope["state"]["client"]`."""

    def __init__(self, app: ASGIApp, tokens: Tokens, metrics: Metrics) -> None:
        self.app = app
        self.tokens = tokens
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_protected(scope["path"]):
            await self.app(scope, receive, send)
            return
        tokens = self.tokens.current()
        if not tokens.enabled:
            await self.app(scope, receive, send)
            return
        token, problem = bearer_token(header_of(scope, b"authorization"))
        name = tokens.identify(token) if token is not None else None
        if name is None:
            result = problem or "forbidden"
            self.metrics.auth.labels("none", result).inc()
            if token is None:
                message = (
                    "missing bearer token: send 'Authorization: Bearer <token>'"
                    if problem == "missing"
                    else "malformed Authorization header: expected 'Bearer <token>'"
                )
                await send_error(scope, send, Unauthorized(message, field="Authorization"))
            else:
                await send_error(scope, send, Forbidden("unknown token", field="Authorization"))
            return
        self.metrics.auth.labels(name, "ok").inc()
        scope.setdefault("state", {})["client"] = name
        await self.app(scope, receive, send)


# -- operators: the admin key (every tenant) and tenant admin tokens (one tenant)


@dataclass(frozen=True)
class AdminScope:
    """Who is calling /admin/*: `tenant` None = the global admin key (any tenant, named with
    `?tenant=` or `X-RouteIQ-Tenant`); otherwise a tenant admin token, bound to that tenant."""

    tenant: str | None
    requested: str | None  # the tenant the call names, if any


def keys_match(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


async def require_admin(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_routeiq_admin_key: Annotated[str | None, Header(alias="X-RouteIQ-Admin-Key")] = None,
    x_routeiq_tenant: Annotated[str | None, Header(alias="X-RouteIQ-Tenant", max_length=64)] = None,
    tenant: Annotated[str | None, Query(max_length=64, description="Tenant (global admin key only).")] = None,
) -> AdminScope:
    settings: Settings = request.app.state.settings
    given = x_routeiq_admin_key or bearer_token(authorization)[0]
    requested = tenant or x_routeiq_tenant
    if not given:
        raise Unauthorized(
            "admin key required: send 'Authorization: Bearer <key>' or 'X-RouteIQ-Admin-Key'",
            field="Authorization",
        )
    expected = settings.admin_key.get_secret_value() if settings.admin_key else None
    if expected is not None and keys_match(given, expected):
        return AdminScope(None, requested)
    source: Tokens | None = getattr(request.app.state, "tokens", None)
    owner = source.current().identify_admin(given) if source is not None else None
    if owner is not None:
        if requested is not None and requested != owner:
            raise Forbidden(f"this admin token is for tenant {owner!r} only", field="tenant")
        return AdminScope(owner, owner)
    if expected is None and (source is None or not source.current().admins):
        raise Forbidden("the admin API is disabled: set ROUTEIQ_ADMIN_KEY to enable it")
    raise Forbidden("wrong admin key", field="Authorization")
