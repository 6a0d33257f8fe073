"""Limits on a connection before a byte of it is trusted: uvicorn's httptools protocol with
bounds, timeouts and a connection cap, like the edge of nginx or Envoy.

uvicorn's httptools protocol buffers a header block of any size (httptools accumulates a value
until it ends), never closes a connection that has not sent a request yet, keeps any number of
them, and answers malformed framing with a bare `400 text/plain`. `GuardedHttpToolsProtocol`
adds, per connection:

- a cap on the bytes of the request line and headers (414 for the URL alone, else 431) and on
  the number of headers (431), checked as the bytes arrive;
- a header deadline: the request line and headers must be complete within
  `header_timeout_seconds` of the connection opening or of the previous response (slowloris), a
  body within `body_timeout_seconds` of its headers (slow body); past it 408, or a silent close
  for a connection that sent nothing;
- a connection cap per worker: at the cap, a new connection closes the one that has been
  without a request in progress the longest (an idle or still-sending one); only when every
  connection is busy is the new one refused (503). The cap stays below what RLIMIT_NOFILE
  leaves for connections (`connection_room`), so it fires before accept() runs out of fds;
- JSON error bodies with `X-Request-ID` for every response it writes itself, and
  `Connection: close` on every response while the process drains.

Each event is counted in `routeiq_connections_closed_total{reason}` and logged (at most one line
per reason per second, with the count since the last line: a flood must not flood the log).
The limits come from `Settings` through `install`, called by `create_app` in each worker.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from routeiq.settings import Settings

log = logging.getLogger("routeiq.http")

_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


@dataclass
class ConnectionGuard:
    """The limits and counters every connection of this process shares."""

    max_header_bytes: int = 32_768
    max_headers: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    max_connections: int = 1024
    counter: Any = None  # routeiq_connections_closed_total, labelled by reason
    draining: bool = False
    # Connections without a request in progress, longest first: the ones a new connection may
    # push out when the cap is reached.
    waiting: OrderedDict[GuardedHttpToolsProtocol, None] = field(default_factory=OrderedDict)
    _logged: dict[str, tuple[float, int]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings, counter: Any = None) -> ConnectionGuard:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_headers=settings.max_headers,
            header_timeout_s=settings.header_timeout_seconds,
            body_timeout_s=settings.body_timeout_seconds,
            max_connections=connection_room(settings),
            counter=counter,
        )

    def fired(self, reason: str, client: tuple[str, int] | None) -> None:
        if self.counter is not None:
            self.counter.labels(reason).inc()
        now = time.monotonic()
        last, suppressed = self._logged.get(reason, (0.0, 0))
        if now - last < 1.0:
            self._logged[reason] = (last, suppressed + 1)
            return
        self._logged[reason] = (now, 0)
        more = f" (and {suppressed} more in the last second)" if suppressed else ""
        peer = f"{client[0]}:{client[1]}" if client else "unknown peer"
        log.warning("connection limit: %s from %s%s", reason, peer, more)


# Descriptors a worker holds besides client connections: listener, epoll, model and log files,
# multiprocess metric files (measured: 17 with one worker, 33 per worker with --workers).
FD_RESERVE = 64


def connection_room(settings: Settings) -> int:
    """ROUTEIQ_MAX_CONNECTIONS, lowered to what RLIMIT_NOFILE leaves for connections. A cap above
    the file limit never fires: accept() fails with EMFILE first and no newcomer is served until
    idle connections time out; below it, idle ones are pushed out and newcomers are served."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return settings.max_connections
    reserve = FD_RESERVE + (2 * settings.redis_max_connections if settings.redis_configured else 0)
    room = max(16, soft - reserve)
    if room >= settings.max_connections:
        return settings.max_connections
    log.warning(
        "ROUTEIQ_MAX_CONNECTIONS=%d is more than the file limit allows (RLIMIT_NOFILE %d, %d kept "
        "for files and Redis): capping connections at %d; raise the limit (ulimit -n) for more",
        settings.max_connections,
        soft,
        reserve,
        room,
    )
    return room


def install(guard: ConnectionGuard) -> None:
    """Make `guard` the limits of every connection this process accepts from now on."""
    GuardedHttpToolsProtocol.installed = guard


def guard() -> ConnectionGuard:
    return GuardedHttpToolsProtocol.installed


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing: httptools turns it into a parser error,
    which uvicorn answers through `send_400_response` (where `_refusal` says what it was)."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    installed = ConnectionGuard()  # replaced by `install`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard = self.installed
        self._awaiting_headers = True  # the next bytes belong to a request line or headers
        self._header_bytes = 0
        self._header_count = 0
        self._request_started = False  # a byte of the current request has arrived
        self._deadline: asyncio.TimerHandle | None = None
        self._refusal: tuple[int, str, str] | None = None

    # -- connection lifecycle
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        g = self._guard
        if len(self.connections) > g.max_connections:
            if g.waiting:
                oldest, _ = g.waiting.popitem(last=False)
                g.fired("evicted", oldest.client)
                oldest.transport.close()
            else:
                g.fired("connection_cap", self.client)
                self._write_error(503, "too many connections; retry shortly", "overloaded", close=True)
                return
        g.waiting[self] = None
        self._arm(g.header_timeout_s, self._header_deadline)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._guard.waiting.pop(self, None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        was_awaiting = self._awaiting_headers
        if was_awaiting:
            self._request_started = True
        super().data_received(data)  # a callback's _Refused comes back as send_400_response
        if self.transport.is_closing() or not self._awaiting_headers:
            return
        # Still inside a header block: count what it has cost so far (httptools keeps it all).
        self._header_bytes += len(data)
        if self._header_bytes > self._guard.max_header_bytes:
            self._refusal = (
                431,
                f"request line and headers exceed {self._guard.max_header_bytes} bytes "
                "(ROUTEIQ_MAX_HEADER_BYTES)",
                "header_too_large",
            )
            self.send_400_response("")

    # -- parser callbacks
    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self._guard.max_header_bytes:
            self._refusal = (
                414,
                f"the URL exceeds {self._guard.max_header_bytes} bytes (ROUTEIQ_MAX_HEADER_BYTES)",
                "url_too_long",
            )
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self._guard.max_headers:
            self._refusal = (
                431,
                f"more than {self._guard.max_headers} headers (ROUTEIQ_MAX_HEADERS)",
                "too_many_headers",
            )
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._header_bytes = self._header_count = 0
        self._guard.waiting.pop(self, None)
        self._disarm()
        super().on_headers_complete()
        if self._guard.draining and self.cycle is not None:
            # Draining: this response says `Connection: close` and the connection ends after
            # it, so the client never writes a request onto a connection about to be cut.
            self.cycle.keep_alive = False
        if not self.parser.should_upgrade():
            self._arm(self._guard.body_timeout_s, self._body_deadline)

    def on_message_complete(self) -> None:
        self._disarm()
        self._awaiting_headers = True
        self._request_started = False
        super().on_message_complete()
        if self.cycle is not None and self.cycle.response_complete and not self.pipeline:
            # Answered before its body ended (e.g. an early 413): wait for the next request here.
            self._guard.waiting[self] = None
            self._arm(self._guard.header_timeout_s, self._header_deadline)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if self._awaiting_headers and not self.pipeline:
            self._guard.waiting[self] = None
            self._arm(self._guard.header_timeout_s, self._header_deadline)

    # -- deadlines
    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        if seconds > 0:
            self._deadline = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _header_deadline(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or not self._awaiting_headers:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a response is still being written; its completion re-arms the deadline
        if not self._request_started:
            self._guard.fired("idle", self.client)
            self.transport.close()
            return
        self._guard.fired("header_timeout", self.client)
        message = f"headers not received within {self._guard.header_timeout_s:g} s"
        self._write_error(408, message + " (ROUTEIQ_HEADER_TIMEOUT_SECONDS)", "request_timeout", close=True)

    def _body_deadline(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self._awaiting_headers:
            return
        self._guard.fired("body_timeout", self.client)
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()
            return
        message = f"body not received within {self._guard.body_timeout_s:g} s"
        self._write_error(408, message + " (ROUTEIQ_BODY_TIMEOUT_SECONDS)", "request_timeout", close=True)

    # -- responses written here, not by the app
    def send_400_response(self, msg: str) -> None:
        refusal, self._refusal = self._refusal, None
        if refusal is None:
            self._guard.fired("malformed", self.client)
            message = "malformed HTTP request (request line, headers or body framing)"
            self._write_error(400, message, "bad_request", close=True)
            return
        status, message, reason = refusal
        self._guard.fired(reason, self.client)
        self._write_error(status, message, "headers_too_large", close=True)

    def _write_error(self, status: int, message: str, kind: str, *, close: bool) -> None:
        body = orjson.dumps({"error": {"type": kind, "message": message}})
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}".encode(),
            b"content-type: application/json",
            b"content-length: " + str(len(body)).encode(),
            b"x-request-id: " + uuid.uuid4().hex.encode(),
        ]
        if status == 503:
            lines.append(b"retry-after: 1")
        if close:
            lines.append(b"connection: close")
        self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        if close:
            self._disarm()
            self.transport.close()
