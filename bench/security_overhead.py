"""What the security and tracing layers cost per request, measured in one run.

In process (µs, median of many calls): the token check, the request limits, the decision
summary and the JSON access-log line. Over HTTP: POST /route to two real `routeiq serve` on
127.0.0.1 at once, requests alternated (keep-alive, concurrency 1, embedding cached so the
decision itself is constant):
baseline (auth off, log level warning: no access line is formatted), the same baseline again as
a control for noise, bearer auth with 20 clients, the JSON access log at info, and both.

Usage: python bench/security_overhead.py [--requests 1000] > table.md
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx

from routeiq.decision.schemas import RouteRequest, RouteResponse
from routeiq.http import request_limits as limits
from routeiq.http.auth import TokenSet
from routeiq.observability.logs import JsonFormatter, decision_summary
from routeiq.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests._harness import ServeProcess

TOKENS = ",".join(f"client{i}:token-{i:02d}-0123456789abcdef" for i in range(20))
LAST = "token-19-0123456789abcdef"
REQUEST = {
    "messages": [
        {"role": "system", "content": "You are a helpful assistant for a logistics company."},
        {"role": "user", "content": "Summarise the attached shipping report in three bullet points."},
        {"role": "assistant", "content": "Sure, please paste it."},
        {"role": "user", "content": "Here it is: " + "containers delayed at port; " * 40},
    ],
    "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
}


def per_call_us(fn, n: int = 20_000) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n // 5):
            fn()
        samples.append((time.perf_counter() - start) / (n // 5) * 1e6)
    return statistics.median(samples)


def in_process() -> list[tuple[str, float]]:
    tokens = TokenSet.from_settings(Settings(auth_tokens=TOKENS))
    settings = Settings()
    request = RouteRequest.model_validate(REQUEST)
    response = RouteResponse(
        model="m",
        deployment_id="d",
        model_group="g",
        fallbacks=["a", "b"],
        profile="auto",
        tier="simple",
        category="summarization",
        confidence=0.8,
        complexity=0.3,
        strategy="centroid",
        reason="auto:balanced",
        request_id="r",
        timings_ms={"signals": 0.1, "embed": 3.0, "total": 3.5},
    )
    record = logging.LogRecord("routeiq.access", logging.INFO, __file__, 1, "POST /route 200", (), None)
    record.fields = {
        "request_id": "r",
        "status": 200,
        "client": "client19",
        "decision": decision_summary(response),
    }
    formatter = JsonFormatter()
    return [
        (
            "token check, 20 clients (sha256 + 20 constant-time compares)",
            per_call_us(lambda: tokens.identify(LAST)),
        ),
        (
            "request limits + text hygiene (4 messages, 1 tool)",
            per_call_us(lambda: limits.enforce(request, settings)),
        ),
        ("decision summary for the log", per_call_us(lambda: decision_summary(response, request))),
        ("JSON access-log line (format only)", per_call_us(lambda: formatter.format(record))),
    ]


AUTH = {"Authorization": f"Bearer {LAST}"}
# name -> (settings, request headers). The second baseline is the control: it shows how far two
# identical servers drift apart on this machine, i.e. what difference is noise.
VARIANTS: dict[str, tuple[dict[str, object], dict[str, str]]] = {
    "baseline: auth off, no access log": ({"log_level": "warning"}, {}),
    "baseline again (control: same settings)": ({"log_level": "warning"}, {}),
    "bearer auth (20 clients), no access log": ({"log_level": "warning", "auth_tokens": TOKENS}, AUTH),
    "auth off, JSON access log": ({"log_level": "info", "log_format": "json"}, {}),
    "bearer auth + JSON access log (shared mode)": (
        {"log_level": "info", "log_format": "json", "auth_tokens": TOKENS},
        AUTH,
    ),
}


def http_latency(tmp: Path, requests: int) -> dict[str, list[float]]:
    """All servers up at once and requests interleaved (order reversed every round), so machine
    noise hits every variant alike."""
    with ExitStack() as stack:
        clients = {}
        for name, (settings, headers) in VARIANTS.items():
            server = stack.enter_context(ServeProcess(tmp, **settings))
            clients[name] = stack.enter_context(httpx.Client(base_url=server.url, headers=headers))
        samples: dict[str, list[float]] = {name: [] for name in clients}
        for i in range(requests + 50):
            order = list(clients.items())
            for name, client in order if i % 2 else reversed(order):
                start = time.perf_counter()
                client.post("/route", json=REQUEST).raise_for_status()
                if i >= 50:  # the first 50 warm up and fill the embedding cache
                    samples[name].append((time.perf_counter() - start) * 1000)
    return samples


def pct(samples: list[float], q: float) -> float:
    return sorted(samples)[min(len(samples) - 1, int(q * len(samples)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    rows = in_process()
    with tempfile.TemporaryDirectory() as tmp:
        samples = http_latency(Path(tmp), args.requests)
    print(
        f"`python bench/security_overhead.py --requests {args.requests}` — {platform.machine()}, "
        f"{os.cpu_count()} cores ({platform.platform()}), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        "other engineers' jobs shared the machine.\n"
    )
    print("| in process | µs per call |\n|---|---|")
    for name, us in rows:
        print(f"| {name} | {us:.1f} |")
    base = pct(next(iter(samples.values())), 0.5)
    print(
        "\n| POST /route over HTTP, cached decision | p50 ms | p95 ms | mean ms | p50 vs baseline |"
        "\n|---|---|---|---|---|"
    )
    for name, values in samples.items():
        p50 = pct(values, 0.5)
        print(
            f"| {name} | {p50:.3f} | {pct(values, 0.95):.3f} | {statistics.mean(values):.3f} "
            f"| {(p50 - base) * 1000:+.0f} µs |"
        )


if __name__ == "__main__":
    main()
