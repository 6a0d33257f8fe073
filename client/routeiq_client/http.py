"""The HTTP boundary: one pooled httpx.AsyncClient per event loop, an explicit deadline, and
every httpx / decoding failure translated into this package's `SidecarError` tree."""

from __future__ import annotations

import asyncio
import json
import weakref
from typing import Any

import httpx

from ._tracecontext import trace_headers
from .config import ClientConfig
from .errors import (
    SidecarBadResponse,
    SidecarError,
    SidecarHTTPError,
    SidecarOverloaded,
    SidecarTimeout,
    SidecarUnavailable,
)

_OVERLOADED = frozenset({429, 503})


class RouteIQClient:
    """Asks the sidecar for a decision. Pass `http` to inject your own AsyncClient (tests,
    custom transports); otherwise one pooled client is created per event loop on first use,
    because an httpx.AsyncClient's pool belongs to the loop it first ran on."""

    def __init__(self, config: ClientConfig, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._injected = http
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def _http(self) -> httpx.AsyncClient:
        if self._injected is not None:
            return self._injected
        loop = asyncio.get_running_loop()
        client = self._per_loop.get(loop)
        if client is None:
            seconds = self.config.deadline_ms / 1000
            client = httpx.AsyncClient(
                base_url=self.config.url,
                headers=self.config.auth_headers(),
                timeout=httpx.Timeout(seconds),
                limits=httpx.Limits(
                    max_connections=self.config.max_connections,
                    max_keepalive_connections=self.config.max_connections,
                ),
                # The sidecar is on loopback: never send it through HTTP(S)_PROXY from the env.
                trust_env=False,
            )
            self._per_loop[loop] = client
        return client

    async def route(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST /route within the deadline; returns the decoded answer or raises SidecarError."""
        # The service refuses at once (503) what it could not answer before this deadline,
        # instead of spending an embedding on an answer nobody waits for.
        headers = {"X-RouteIQ-Deadline-Ms": f"{self.config.deadline_ms:g}", **(trace_headers() or {})}
        try:
            async with asyncio.timeout(self.config.deadline_ms / 1000):
                response = await self._http().post("/route", json=payload, headers=headers)
        except TimeoutError as exc:
            raise SidecarTimeout(f"no answer within {self.config.deadline_ms:g} ms") from exc
        except httpx.TimeoutException as exc:
            raise SidecarTimeout(f"{type(exc).__name__}: {exc}") from exc
        except (httpx.TransportError, OSError) as exc:
            raise SidecarUnavailable(f"{type(exc).__name__}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise SidecarError(f"{type(exc).__name__}: {exc}") from exc
        return decode_answer(response)

    async def aclose(self) -> None:
        """Close the pool of the running loop (each loop's pool can only be closed on it)."""
        client = self._per_loop.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


def decode_answer(response: httpx.Response) -> dict[str, Any]:
    status = response.status_code
    if status in _OVERLOADED:
        raise SidecarOverloaded(f"HTTP {status}")
    if not 200 <= status < 300:
        raise SidecarHTTPError(status, *_error_of(response))
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise SidecarBadResponse(f"answer is not JSON: {exc}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("deployment_id"), str):
        raise SidecarBadResponse("answer has no string deployment_id")
    return body


def _error_of(response: httpx.Response) -> tuple[str, str | None]:
    """The service's `{"error": {"type", "message"}}`, else the start of the body."""
    try:
        error = json.loads(response.content).get("error", {})
        kind = error.get("type")
        return str(error.get("message", ""))[:300], kind if isinstance(kind, str) else None
    except (ValueError, AttributeError):
        return response.text[:300], None
