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
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Header, Request
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
# Path prefixes that need a client token. Health, readiness, metrics and docs stay open (probes
# and scrapers carry no tokens); admin endpoints have their own key (`require_admin`).
PROTECTED_PREFIXES = ("/route", "/feedback")


@dataclass(frozen=True)
class TokenSet:
    """sha256 digests of the configured tokens, by client name (the plain tokens are not kept)."""

    digests: Mapping[str, bytes]

    @property
    def enabled(self) -> bool:
        return bool(self.digests)

    def identify(self, token: str) -> str | None:
        """The client name for `token`, or None. Compares against every digest with
        `hmac.compare_digest` and never stops early, so timing says nothing about the tokens."""
        presented = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        found: str | None = None
        for name, digest in self.digests.items():
            if hmac.compare_digest(presented, digest):
                found = name
        return found

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenSet:
        pairs: list[tuple[str, str, str]] = []  # (name, token, where)
        if settings.auth_tokens is not None:
            pairs += _parse_env(settings.auth_tokens.get_secret_value())
        if settings.auth_tokens_file is not None:
            pairs += _parse_file(settings.auth_tokens_file)
        digests: dict[str, bytes] = {}
        seen: dict[bytes, str] = {}
        for name, token, where in pairs:
            if not _NAME.match(name):
                raise ConfigError(f"{where}: client name {name!r} must match {_NAME.pattern}")
            if len(token) < MIN_TOKEN_CHARS or token != token.strip():
                raise ConfigError(
                    f"{where}: the token for {name!r} must be at least {MIN_TOKEN_CHARS} characters "
                    "without surrounding spaces; make one with "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
                )
            digest = hashlib.sha256(token.encode("utf-8")).digest()
            if name in digests:
                raise ConfigError(f"{where}: client name {name!r} is configured twice")
            if digest in seen:
                raise ConfigError(f"{where}: clients {seen[digest]!r} and {name!r} share one token")
            digests[name] = digest
            seen[digest] = name
        return cls(digests)


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


def _parse_file(path: Path) -> list[tuple[str, str, str]]:
    where = f"ROUTEIQ_AUTH_TOKENS_FILE={path}"
    try:
        data = load_yaml(path, what="auth tokens file")
    except Exception as exc:  # ArtifactError: reword as a config problem naming the setting
        raise ConfigError(f"{where}: {exc}") from exc
    clients = data.get("clients", data)
    if not isinstance(clients, dict):
        raise ConfigError(f"{where}: 'clients' must map client names to tokens")
    pairs = []
    for name, token in clients.items():
        if not isinstance(token, str):
            raise ConfigError(f"{where}: the token for {name!r} must be a string")
        pairs.append((str(name), token, where))
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
    return warnings


class AuthMiddleware:
    """401/403 for protected paths without a known bearer token; names the client otherwise."""

    def __init__(self, app: ASGIApp, tokens: TokenSet, metrics: Metrics) -> None:
        self.app = app
        self.tokens = tokens
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.tokens.enabled or not is_protected(scope["path"]):
            await self.app(scope, receive, send)
            return
        token, problem = bearer_token(header_of(scope, b"authorization"))
        name = self.tokens.identify(token) if token is not None else None
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


# -- operators: the admin key


def keys_match(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


async def require_admin(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_routeiq_admin_key: Annotated[str | None, Header(alias="X-RouteIQ-Admin-Key")] = None,
) -> None:
    settings: Settings = request.app.state.settings
    given = x_routeiq_admin_key or bearer_token(authorization)[0]
    if not given:
        raise Unauthorized(
            "admin key required: send 'Authorization: Bearer <key>' or 'X-RouteIQ-Admin-Key'",
            field="Authorization",
        )
    expected = settings.admin_key.get_secret_value() if settings.admin_key else None
    if expected is None:
        raise Forbidden("the admin API is disabled: set ROUTEIQ_ADMIN_KEY to enable it")
    if not keys_match(given, expected):
        raise Forbidden("wrong admin key", field="Authorization")
