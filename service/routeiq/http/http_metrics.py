"""HTTP request metrics: count and duration by method, route template and status.

The route label is the matched route's template (`/admin/experiments/{name}`), never the raw
path: a scanner probing random URLs would otherwise create one series per URL. Anything no
route matched is `unmatched`. Sits just inside request identity, so the 401s, 413s and shed
503s that middleware answers are counted with the status the caller saw.
"""

from __future__ import annotations

import time

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routeiq.observability.metrics import Metrics

UNMATCHED = "unmatched"


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._routes: dict[str, str] = {}  # path -> template, for paths seen and matched

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the caller sees if the app raises before starting a response

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            count, duration = self.metrics.http(scope["method"], self._template(scope), status)
            count.inc()
            duration.observe(time.perf_counter() - start)

    def _template(self, scope: Scope) -> str:
        path: str = scope.get("path", "")
        known = self._routes.get(path)
        if known is not None:
            return known
        template = route_template(scope)
        if template != UNMATCHED and "{" not in template and len(self._routes) < 512:
            self._routes[path] = template  # only static paths: a templated one varies per call
        return template


def route_template(scope: Scope) -> str:
    """The matched route's template, or `unmatched` (after the app ran)."""
    template = getattr(scope.get("route"), "path", None)  # set by the router once a route matched
    return template if isinstance(template, str) else _match(scope)


def _match(scope: Scope) -> str:
    """Middleware-answered requests (401, 413, 503) never reach the router: match here."""
    app = scope.get("app")
    for route in getattr(getattr(app, "router", None), "routes", ()):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            template = getattr(route, "path", None)
            return template if isinstance(template, str) else UNMATCHED
    return UNMATCHED
