"""Request authentication: FastAPI dependencies, one per kind of caller.

`require_admin` guards /admin/*: the key comes as `Authorization: Bearer <key>` or
`X-RouteIQ-Admin-Key`, and is compared in constant time. Missing -> 401, wrong -> 403, no key
configured (ROUTEIQ_ADMIN_KEY unset) -> 403: the admin API is off unless someone turns it on.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Header, Request

from .errors import Forbidden, Unauthorized
from .settings import Settings


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def keys_match(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


async def require_admin(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_routeiq_admin_key: Annotated[str | None, Header(alias="X-RouteIQ-Admin-Key")] = None,
) -> None:
    settings: Settings = request.app.state.settings
    given = x_routeiq_admin_key or bearer(authorization)
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
