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
  `Connection: close` on every response while the process drains;
- early refusal under overload: while admission would refuse a new decision anyway, a
  `POST /route` or `/route/batch` is answered 503 from here as soon as its headers are parsed,
  its body discarded unread — no ASGI task, middleware, body parse or validation. Under 4x
  overload most requests are refusals, and each one answered this way costs a few tens of
  microseconds of the event loop's time instead of the whole stack's (bench/hostile.py,
  "overload"). Only where the refusal cannot depend on who is asking (see `EdgeShed`).

Each event is counted in `routeiq_connections_closed_total{reason}` and logged (at most one line
per reason per second, with the count since the last line: a flood must not flood the log).
The limits come from `Settings` through `install`, called by `create_app` in each worker.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import resource
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from routeiq.errors import DeadlineUnmet, Overloaded, RouteIQError
from routeiq.http import deadline
from routeiq.settings import Settings

log = logging.getLogger("routeiq.http")

_VALID_ID = re.compile(rb"^[A-Za-z0-9._:/+=-]{1,128}$")  # as the app's request identity accepts
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
    # Set by the app once it serves (`EdgeShed`); None: every request goes to the app.
    edge_shed: EdgeShed | None = None
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

    def fired(self, reason: str, client: tuple[str, int] | None, *, closed: bool = True) -> None:
        """A limit fired: counted (when it closed or refused a connection) and logged."""
        if closed and self.counter is not None:
            self.counter.labels(reason).inc()
        now = time.monotonic()
        last, suppressed = self._logged.get(reason, (0.0, 0))
        if now - last < 1.0:
            self._logged[reason] = (last, suppressed + 1)
            return
        self._logged[reason] = (now, 0)
        more = f" (and {suppressed} more in the last second)" if suppressed else ""
        peer = f"{client[0]}:{client[1]}" if client else "unknown peer"
        what = "connection limit" if closed else "refused at the edge"
        log.warning("%s: %s from %s%s", what, reason, peer, more)


@dataclass
class EdgeShed:
    """What the connection layer needs to refuse a decision request before the app sees it.

    `verdict()` is the admission's answer for a decision arriving now: the refusal reason, or
    None to pass the request on. The app supplies it only while the answer cannot depend on the
    caller — with authentication off (one tenant) and no CORS; otherwise the app's own shedding,
    behind auth, decides per tenant. `refused(reason)` counts the refusal in the same metrics the
    app's shedding uses."""

    verdict: Callable[[float | None], str | None]  # (the caller's seconds left, if it said)
    refused: Callable[[str, str], None]  # (reason, path)
    paths: frozenset[bytes] = frozenset({b"/route", b"/route/batch"})
    _bodies: dict[str, bytes] = field(default_factory=dict)

    def body(self, reason: str) -> bytes:
        body = self._bodies.get(reason)
        if body is None:
            error = refusal(reason)
            body = self._bodies[reason] = orjson.dumps(error.to_body())
        return body


# Request ids for edge refusals: unique per process without a syscall per refusal (uuid4 reads
# the kernel's random source, which at thousands of refusals a second shows in a profile).
_EDGE_ID_PREFIX = f"{os.getpid():x}{uuid.uuid4().hex[:12]}"
_edge_ids = itertools.count(1)


def refusal(reason: str) -> RouteIQError:
    """The error a decision refused for `reason` (`Admission.shedding`) answers with."""
    if reason == "deadline":
        return DeadlineUnmet()
    what = "decisions in flight" if reason == "overloaded" else "embeddings queued"
    return Overloaded(f"too many {what}; retry shortly", retry_after=1)


# Descriptors a worker holds besides client connections: listener, epoll, model and log files,
# multiprocess metric files (measured: 17 with one worker, 33 per worker with --workers).
FD_RESERVE = 64


def file_reserve(settings: Settings) -> int:
    """Descriptors a worker keeps for everything but client connections."""
    return FD_RESERVE + (2 * settings.redis_max_connections if settings.redis_configured else 0)


def raise_file_limit(settings: Settings) -> None:
    """Raise the soft RLIMIT_NOFILE to what ROUTEIQ_MAX_CONNECTIONS needs, up to the hard limit.
    Many hosts start processes at a soft 1024 under a far higher hard limit; the soft one is a
    default for programs that never asked, not a policy. Workers inherit the raised limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = settings.max_connections + file_reserve(settings)
    if soft == resource.RLIM_INFINITY or soft >= want:
        return
    new = want if hard == resource.RLIM_INFINITY else min(hard, want)
    if new <= soft:
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    log.info("raised the open-files limit from %d to %d (hard limit %s)", soft, new, hard)


def connection_room(settings: Settings) -> int:
    """ROUTEIQ_MAX_CONNECTIONS, lowered to what RLIMIT_NOFILE leaves for connections. A cap above
    the file limit never fires: accept() fails with EMFILE first and no newcomer is served until
    idle connections time out; below it, idle ones are pushed out and newcomers are served."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return settings.max_connections
    reserve = file_reserve(settings)
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


def install(guard: ConnectionGuard) -> ConnectionGuard:
    """Make `guard` the limits of every connection this process accepts from now on."""
    GuardedHttpToolsProtocol.installed = guard
    return guard


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
        self._discarding = False  # the body of a request refused at the edge is passing
        self._boundary = False  # a header block or a message ended in the read being parsed

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
        self._boundary = False
        super().data_received(data)  # a callback's _Refused comes back as send_400_response
        if self.transport.is_closing() or not self._awaiting_headers or self._boundary:
            # A header block or a whole message ended inside this read: its bytes were (also)
            # a body, which is not the header block's to pay for — a large /route arriving in
            # one read with its headers was refused 431 when they were counted. The next
            # header block is counted from the next read: unchecked for one read at most.
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
        self._boundary = True
        self._awaiting_headers = False
        self._header_bytes = self._header_count = 0
        self._guard.waiting.pop(self, None)
        self._disarm()
        reason = self._edge_verdict()
        if reason is not None:
            self._refuse_at_edge(reason)
            return
        super().on_headers_complete()
        if self._guard.draining and self.cycle is not None:
            # Draining: this response says `Connection: close` and the connection ends after
            # it, so the client never writes a request onto a connection about to be cut.
            self.cycle.keep_alive = False
        if not self.parser.should_upgrade():
            self._arm(self._guard.body_timeout_s, self._body_deadline)

    def _edge_verdict(self) -> str | None:
        shed = self._guard.edge_shed
        if shed is None or self.pipeline or (self.cycle is not None and not self.cycle.response_complete):
            return None  # a response is still owed on this connection: keep responses in order
        if self.parser.get_method() != b"POST" or self.url.split(b"?", 1)[0] not in shed.paths:
            return None
        seconds_left = None
        for name, value in self.headers:
            if name == b"expect":
                return None  # a 100-continue client waits for the app's answer
            if name == b"x-routeiq-deadline-ms":
                seconds_left = deadline.seconds_of(value)  # invalid: None, the app answers 400
        return shed.verdict(seconds_left)

    def on_body(self, body: bytes) -> None:
        if not self._discarding:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._boundary = True
        self._disarm()
        self._awaiting_headers = True
        self._request_started = False
        if self._discarding:
            # The refused request's body has passed: the connection waits for the next one.
            self._discarding = False
            if not self.transport.is_closing():
                self._guard.waiting[self] = None
                self._arm(self._guard.header_timeout_s, self._header_deadline)
            return
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
        if self._discarding or (self.cycle is not None and self.cycle.response_started):
            self.transport.close()
            return
        message = f"body not received within {self._guard.body_timeout_s:g} s"
        self._write_error(408, message + " (ROUTEIQ_BODY_TIMEOUT_SECONDS)", "request_timeout", close=True)

    # -- responses written here, not by the app
    def _refuse_at_edge(self, reason: str) -> None:
        """503 at once, from the headers alone; the body that follows is dropped unread."""
        shed = self._guard.edge_shed
        assert shed is not None
        path = self.url.split(b"?", 1)[0].decode("ascii")
        shed.refused(reason, path)
        self._guard.fired(reason, self.client, closed=False)  # one log line a second at most
        self.server_state.total_requests += 1
        keep_alive = (
            not self._guard.draining
            and self.parser.get_http_version() == "1.1"
            and self.parser.should_keep_alive()
        )
        incoming = next((v for k, v in self.headers if k == b"x-request-id"), None)
        request_id = (
            incoming
            if incoming is not None and _VALID_ID.match(incoming)
            else f"{_EDGE_ID_PREFIX}{next(_edge_ids):x}".encode()
        )
        body = shed.body(reason)
        head = [
            b"HTTP/1.1 503 Service Unavailable",
            *(name + b": " + value for name, value in self.server_state.default_headers),
            b"content-type: application/json",
            b"content-length: " + str(len(body)).encode(),
            b"x-request-id: " + request_id,
            b"retry-after: 1",
        ]
        if not keep_alive:
            head.append(b"connection: close")
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        if not keep_alive:
            self.transport.close()
            return
        self._discarding = True
        self._arm(self._guard.body_timeout_s, self._body_deadline)  # a body that never ends

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
