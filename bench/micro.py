"""Microbenchmark: raw embedding vs the full in-process decision vs HTTP, measured in one run.

For prompts of 10/32/64/128/256 tokens (real prompts from bench/data, cut to length):
- raw: tokenize + ONNX run + pool of exactly the text the decision embeds (the baseline);
- decision: the whole pipeline in process, embedding cache off;
- cached: the whole pipeline in process, embedding already cached;
- HTTP: POST /route to a real `routeiq serve` on 127.0.0.1 (keep-alive, concurrency 1), cached,
  so the difference to in-process cached is what HTTP + JSON add.

Usage: python bench/micro.py [--iterations 200] > table.md
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from prompts import prompts_of_length
from routeiq.decision.prompt import embed_segments, view_of
from routeiq.decision.schemas import RouteRequest
from routeiq.engine import Engine
from routeiq.inference.cache import cache_key
from routeiq.observability.metrics import Metrics
from routeiq.pipeline import Context, decide
from routeiq.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests._harness import ServeProcess

LENGTHS = (10, 32, 64, 128, 256)


def pct(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples) * 1000, q))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    settings = Settings(embedding_cache_size=0)
    engine = Engine.load(settings, Metrics.create())
    engine.warm_up()
    cached_engine = Engine.load(Settings(), Metrics.create())
    cached_engine.warm_up()
    budget = settings.token_budget
    rows = []

    async def timed_decisions(eng: Engine, requests: list[RouteRequest], n: int) -> list[float]:
        out = []
        for i in range(n):
            start = time.perf_counter()
            await decide(eng, requests[i % len(requests)], Context("bench"))
            out.append(time.perf_counter() - start)
        return out

    for tokens in LENGTHS:
        prompts = prompts_of_length(engine.embedder, tokens, 20)
        requests = [RouteRequest(prompt=p) for p in prompts]
        segments = [embed_segments(view_of(r), budget) for r in requests]
        raw, n = [], args.iterations
        for i in range(n):
            start = time.perf_counter()
            engine.embedder.embed([segments[i % len(segments)]], budget)
            raw.append(time.perf_counter() - start)
        decisions = asyncio.run(timed_decisions(engine, requests, n))
        asyncio.run(timed_decisions(cached_engine, requests, len(requests)))  # fill the cache
        cached = asyncio.run(timed_decisions(cached_engine, requests, n))
        assert all(cached_engine.cache.get(cache_key(s, budget)) is not None for s in segments)
        rows.append((tokens, prompts, raw, decisions, cached))

    server = ServeProcess().start()
    port = server.port
    over_http: dict[int, list[float]] = {}
    try:
        # stdlib http.client on one keep-alive connection: a thin client, so the numbers are
        # the server's cost, not the client library's (httpx alone adds ~0.3 ms per call).
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"content-type": "application/json"}

        def post(body: bytes) -> None:
            conn.request("POST", "/route", body, headers)
            response = conn.getresponse()
            response.read()
            assert response.status == 200

        health = []
        for _ in range(args.iterations):
            start = time.perf_counter()
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            health.append(time.perf_counter() - start)
        for tokens, prompts, *_ in rows:
            bodies = [json.dumps({"prompt": p}).encode() for p in prompts]
            for b in bodies:  # warm the server's cache
                post(b)
            samples = []
            for i in range(args.iterations):
                start = time.perf_counter()
                post(bodies[i % len(bodies)])
                samples.append(time.perf_counter() - start)
            over_http[tokens] = samples
        conn.close()
    finally:
        server.stop()

    print(
        f"Command: `python bench/micro.py --iterations {args.iterations}` — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, {os.cpu_count()} cores, onnxruntime threads={settings.ort_intra_op_threads}, "
        f"token budget {budget}\n"
    )
    print(
        f"GET /healthz round trip on the same connection (transport + framework floor): "
        f"p50 {pct(health, 50):.2f} ms, p99 {pct(health, 99):.2f} ms\n"
    )
    print(
        "| prompt tokens | raw embed p50 / p99 ms | decision p50 / p99 ms | overhead p50 | cached decision p50 / p99 ms | HTTP cached p50 / p99 ms | HTTP adds p50 ms |"
    )
    print("|---|---|---|---|---|---|---|")
    for tokens, _, raw, decisions, cached in rows:
        overhead = (pct(decisions, 50) - pct(raw, 50)) / pct(raw, 50) * 100
        h = over_http[tokens]
        print(
            f"| {tokens} | {pct(raw, 50):.2f} / {pct(raw, 99):.2f} | {pct(decisions, 50):.2f} / {pct(decisions, 99):.2f} | "
            f"{overhead:+.1f}% | {pct(cached, 50):.3f} / {pct(cached, 99):.3f} | {pct(h, 50):.2f} / {pct(h, 99):.2f} | "
            f"{pct(h, 50) - pct(cached, 50):.2f} |"
        )


if __name__ == "__main__":
    main()
