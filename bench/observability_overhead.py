"""What the observability work costs /route, measured in one run.

Over HTTP: POST /route to several real `routeiq serve` on 127.0.0.1 at once, requests
alternated (keep-alive, concurrency 1, embedding cached so the decision itself is constant):
- before: the code of `main` (git archive of its service/ into a temp dir, run with PYTHONPATH),
  i.e. without HTTP metrics, the spend counters and the explain references;
- now, and the same again as a control for noise between identical servers;
- now with the dashboard open: a thread polling /admin/overview every second (what the page
  does) and /admin/decisions every 5 s;
- now with tracing on (the otel extra), exporting over OTLP/HTTP to a receiver in this process
  that answers 200, every request carrying a traceparent. Tracing off is the "now" rows: off,
  no tracing code is installed.
In process (µs per call): the HTTP-metrics middleware around a no-op ASGI app, and the two
spend counters.

Usage: python bench/observability_overhead.py [--requests 1000] [--base main] > table.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from routeiq.http.http_metrics import HttpMetricsMiddleware
from routeiq.observability.metrics import Metrics

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests._harness import ServeProcess  # noqa: E402

KEY = "bench-admin-key-0123456789"
REQUEST = {"prompt": "Summarise the causes of the French revolution in three bullet points."}


def per_call_us(fn, n: int = 20_000) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n * 1e6)
    return best


def in_process() -> list[tuple[str, float]]:
    metrics = Metrics.create()

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def send(message):  # type: ignore[no-untyped-def]
        return None

    async def receive():  # type: ignore[no-untyped-def]
        return {"type": "http.request"}

    wrapped = HttpMetricsMiddleware(app, metrics)
    scope = {"type": "http", "method": "POST", "path": "/route", "route": type("R", (), {"path": "/route"})()}

    def awaited_us(target, n: int = 20_000) -> float:  # type: ignore[no-untyped-def]
        async def many() -> float:
            start = time.perf_counter()
            for _ in range(n):
                await target(scope, receive, send)
            return (time.perf_counter() - start) / n * 1e6

        return min(asyncio.run(many()) for _ in range(5))

    bare_us, metrics_us = awaited_us(app), awaited_us(wrapped)
    spend = metrics.spend.labels("gpt-4o-mini")
    return [
        ("HTTP metrics middleware (counter + histogram, cached children)", metrics_us - bare_us),
        ("spend counters (2 inc)", per_call_us(lambda: (spend.inc(1e-6), metrics.premium_spend.inc(2e-6)))),
    ]


def dashboard_poller(url: str, stop: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=url, headers=headers, trust_env=False) as client:
        i = 0
        while not stop.wait(1.0):
            client.get("/admin/overview").raise_for_status()
            if i % 5 == 0:
                client.get("/admin/decisions", params={"limit": 200}).raise_for_status()
            i += 1


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


TRACEPARENT = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}


def http_latency(tmp: Path, requests: int, base: str) -> dict[str, list[float]]:
    before = Path(tempfile.mkdtemp(prefix="routeiq-before-"))
    archive = subprocess.run(["git", "archive", base, "service"], cwd=REPO, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    variants = {
        f"before ({base})": ServeProcess(
            tmp, admin_key=KEY, models_path=REPO / "models", env={"PYTHONPATH": str(before / "service")}
        ),
        "now": ServeProcess(tmp, admin_key=KEY),
        "now again (control)": ServeProcess(tmp, admin_key=KEY),
        "now, dashboard open (polls /admin/overview 1/s)": ServeProcess(tmp, admin_key=KEY),
        "now, tracing on (OTLP to a local receiver)": ServeProcess(
            tmp,
            admin_key=KEY,
            tracing_enabled="true",
            env={"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.server_address[1]}"},
        ),
    }
    stop = threading.Event()
    with ExitStack() as stack:
        clients = {}
        for name, server in variants.items():
            stack.enter_context(server)
            clients[name] = stack.enter_context(httpx.Client(base_url=server.url, trust_env=False))
        # The "before" server must really be the old code: it has no local /docs assets.
        old = httpx.get(f"{next(iter(variants.values())).url}/docs/assets/swagger-ui.css", trust_env=False)
        assert old.status_code == 404, "the before server runs the new code"
        poller = threading.Thread(
            target=dashboard_poller, args=(list(variants.values())[-1].url, stop), daemon=True
        )
        poller.start()
        samples: dict[str, list[float]] = {name: [] for name in clients}
        for i in range(requests + 50):
            order = list(clients.items())
            for name, client in order if i % 2 else reversed(order):
                start = time.perf_counter()
                client.post("/route", json=REQUEST, headers=TRACEPARENT).raise_for_status()
                if i >= 50:
                    samples[name].append((time.perf_counter() - start) * 1000)
        stop.set()
        poller.join(timeout=5)
    sink.shutdown()
    sink.server_close()
    return samples


def pct(samples: list[float], q: float) -> float:
    return sorted(samples)[min(len(samples) - 1, int(q * len(samples)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--base", default="main")
    args = parser.parse_args()
    calls = in_process()
    with tempfile.TemporaryDirectory() as tmp:
        samples = http_latency(Path(tmp), args.requests, args.base)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"`python bench/observability_overhead.py --requests {args.requests}` — {platform.machine()}, "
        f"{os.cpu_count()} cores ({platform.platform()}), {when}; other engineers' jobs shared the machine.\n"
    )
    print("| in process | µs per call |\n|---|---|")
    for name, us in calls:
        print(f"| {name} | {us:.1f} |")
    print(
        "\n| POST /route over HTTP, cached decision | p50 ms | p95 ms | mean ms | p50 vs before |\n|---|---|---|---|---|"
    )
    first = next(iter(samples.values()))
    for name, values in samples.items():
        delta = (pct(values, 0.5) - pct(first, 0.5)) * 1000
        mean = sum(values) / len(values)
        print(f"| {name} | {pct(values, 0.5):.3f} | {pct(values, 0.95):.3f} | {mean:.3f} | {delta:+.0f} µs |")


if __name__ == "__main__":
    main()
