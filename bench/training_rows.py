"""What keeping training rows costs a decision, measured in one run against rows off.

In process (embedding cached, so the decision itself is constant; engines alternated request by
request so drift on this shared machine hits every configuration alike):
- off: the default engine, rows off;
- off again: an identical second engine, the control for noise between identical engines;
- on: ROUTEIQ_TRAINING_ROWS_DIR set (a temp dir): every decision keeps its pending record;
- on + feedback: as `on`, and each decision's outcome joined right after it, timed with it
  (what /feedback adds: one lookup, one queue put; the writer thread builds and writes the row
  meanwhile, on the same cores).
Over HTTP: POST /route to four real `routeiq serve` in rotation (keep-alive, concurrency 1): off,
off again (the control), on (decisions kept, no feedback), on + feedback (each /route followed by
its /feedback, untimed, so its writer thread writes rows between the timed calls).

Usage: python bench/training_rows.py [--requests 3000] [--http-requests 1000] > table.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

from routeiq.decision.schemas import RouteRequest
from routeiq.engine import Engine
from routeiq.observability.metrics import Metrics
from routeiq.pipeline import Context, decide
from routeiq.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests._harness import ServeProcess

PROMPT = "Write a Python function that merges two sorted lists and explain its complexity"


def pct(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples) * 1e6, q))


async def in_process(requests: int, rows_dir: Path) -> dict[str, list[float]]:
    engines = {
        "off": Engine.load(Settings(), Metrics.create()),
        "off again": Engine.load(Settings(), Metrics.create()),
        "on": Engine.load(Settings(training_rows_dir=rows_dir / "a"), Metrics.create()),
        "on + feedback": Engine.load(Settings(training_rows_dir=rows_dir / "b"), Metrics.create()),
    }
    for engine in engines.values():
        engine.warm_up()
    request = RouteRequest(prompt=PROMPT)
    times: dict[str, list[float]] = {name: [] for name in engines}
    order = list(engines.items())
    for i in range(requests + 200):
        # Rotated every round: no engine is always first (the first after a switch pays more).
        for name, engine in order[i % len(order) :] + order[: i % len(order)]:
            rid = f"{name}-{i}"
            start = time.perf_counter()
            response = await decide(engine, request, Context(request_id=rid))
            elapsed = time.perf_counter() - start
            if name == "on + feedback":
                rows = engine.training_rows
                assert rows is not None
                start = time.perf_counter()
                rows.join(
                    rid,
                    response.deployment_id,
                    success=True,
                    quality=0.9,
                    latency_ms=100.0,
                    tenant="default",
                    embedder_sha256=engine.embedder.fingerprint,
                )
                elapsed += time.perf_counter() - start
            if i >= 200:  # warm-up: caches, the pending buffer's first inserts
                times[name].append(elapsed)
    for engine in engines.values():
        await engine.close()
    return times


def per_call(calls: int) -> dict[str, float]:
    """µs per call of the two things rows add: the pending insert a decision makes, and the
    join /feedback makes (lookup, queue put; the row is built on the writer thread)."""
    from routeiq.observability.training_rows import PendingDecision, PendingDecisions, RowWriter, TrainingRows

    vector = np.random.default_rng(0).normal(size=384).astype(np.float32)
    pending = PendingDecisions(10_000, 3600)

    def decision() -> PendingDecision:
        return PendingDecision(
            1.0,
            vector,
            "code_generation",
            "moderate",
            0.4,
            False,
            "centroid",
            None,
            None,
            20,
            (("a", "m/a"), ("b", "m/b")),
        )

    start = time.perf_counter()
    for i in range(calls):
        pending.add(f"r{i}", decision())
    keep = (time.perf_counter() - start) / calls * 1e6
    with tempfile.TemporaryDirectory() as tmp:
        metrics = Metrics.create(process=False)
        writer = RowWriter(Path(tmp), metrics, queue_size=calls, max_file_bytes=1 << 30, max_files=2)
        rows = TrainingRows(pending, writer, metrics, include_prompt=False)
        ids = [f"r{i}" for i in range(calls - 10_000, calls)]
        start = time.perf_counter()
        for rid in ids:
            rows.join(
                rid, "a", success=True, quality=0.9, latency_ms=1.0, tenant="t", embedder_sha256="x" * 64
            )
        join = (time.perf_counter() - start) / len(ids) * 1e6
    return {"keep (pending insert)": keep, "join (lookup + queue put)": join}


def over_http(requests: int, rows_dir: Path) -> dict[str, list[float]]:
    names = ("off", "off again", "on", "on + feedback")
    times: dict[str, list[float]] = {name: [] for name in names}
    with (
        ServeProcess() as off,
        ServeProcess() as off_again,
        ServeProcess(training_rows_dir=rows_dir / "http-route") as on,
        ServeProcess(training_rows_dir=rows_dir / "http") as on_feedback,
        httpx.Client(trust_env=False, timeout=10) as http,
    ):
        servers = list(zip(names, (off, off_again, on, on_feedback), strict=True))
        body = {"prompt": PROMPT}
        for i in range(requests + 100):
            for name, server in servers[i % 4 :] + servers[: i % 4]:
                start = time.perf_counter()
                answer = http.post(server.url + "/route", json=body)
                elapsed = time.perf_counter() - start
                assert answer.status_code == 200, answer.text
                if name == "on + feedback":  # its outcome, untimed: the row is written meanwhile
                    decision = answer.json()
                    outcome = {
                        "deployment_id": decision["deployment_id"],
                        "request_id": decision["request_id"],
                        "success": True,
                        "quality": 0.9,
                    }
                    http.post(server.url + "/feedback", json={"outcomes": [outcome]})
                if i >= 100:
                    times[name].append(elapsed)
        # The writer thread is a little behind the last /feedback: let it finish before the kill.
        expected = requests + 100
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _lines(rows_dir / "http") < expected:
            time.sleep(0.05)
    return times


def _lines(folder: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in folder.glob("*.jsonl"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--http-requests", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="routeiq-rows-bench-") as tmp:
        rows_dir = Path(tmp)
        local = asyncio.run(in_process(args.requests, rows_dir))
        written = _lines(rows_dir / "b")
        remote = over_http(args.http_requests, rows_dir)
        http_rows = _lines(rows_dir / "http")
    calls = per_call(100_000)
    print(
        f"`python bench/training_rows.py --requests {args.requests} --http-requests {args.http_requests}`, "
    )
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}, "
    )
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC.\n")
    base = local["off"]
    print("| In process, cached embedding | p50 µs | p99 µs | p50 vs off | p99 vs off |")
    print("|---|---|---|---|---|")
    for name, samples in local.items():
        print(
            f"| {name} | {pct(samples, 50):.0f} | {pct(samples, 99):.0f} | "
            f"{pct(samples, 50) / pct(base, 50):.2f}× | {pct(samples, 99) / pct(base, 99):.2f}× |"
        )
    print(f"\nRows written by the `on + feedback` engine's thread: {written} of {args.requests + 200}.\n")
    print("| Per call (tight loop) | µs |")
    print("|---|---|")
    for name, us in calls.items():
        print(f"| {name} | {us:.1f} |")
    print()
    print("| HTTP POST /route | p50 ms | p99 ms | p50 vs off | p99 vs off |")
    print("|---|---|---|---|---|")
    for name, samples in remote.items():
        print(
            f"| {name} | {pct(samples, 50) / 1000:.2f} | {pct(samples, 99) / 1000:.2f} | "
            f"{pct(samples, 50) / pct(remote['off'], 50):.2f}× | {pct(samples, 99) / pct(remote['off'], 99):.2f}× |"
        )
    print(f"\nRows written by the `on + feedback` server: {http_rows} of {args.http_requests + 100}.")


if __name__ == "__main__":
    main()
