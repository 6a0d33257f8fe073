"""Noisy neighbour: tenant A offers 4x the service's capacity, tenant B 0.2x; is B still served?

One real `routeiq serve` with two client tokens (cluster-a, cluster-b), embedding cache off and
a distinct prompt per request, so every decision embeds. In one run, side by side:

1. capacity: A alone, closed loop (16 connections) -> decisions/s;
2. baseline: B alone at 0.2x capacity (open loop, Poisson arrivals) -> B's success and p99;
3. contended: A at 4x capacity and B at 0.2x, at the same time, for `--duration` seconds.

Each load generator is its own process speaking raw HTTP/1.1 over keep-alive connections (so
A's generator does not slow B's clock, and a refused request costs the client almost nothing).
Pass: B's success >= 99% and B's p99 <= 2x its p99 alone; A is refused with 429.

With `--compare DIR` (a checkout of the code before tenants, e.g. `git worktree add DIR main`)
the same three phases then run against that code, so the table shows what fair share changes
next to a baseline taken on the same machine minutes apart.

Usage: python bench/noisy_neighbour.py [--duration 30] [--compare DIR] [--write]
`--write` replaces the "Noisy neighbour" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.loadgen import Http, poisson_arrivals  # noqa: E402
from tests._harness import ServeProcess  # noqa: E402

TOKENS = {"cluster-a": "noisy-cluster-a-0123456789", "cluster-b": "quiet-cluster-b-0123456789"}
BEGIN, END = "<!-- noisy:begin -->", "<!-- noisy:end -->"
SERVER = {
    "auth_tokens": ",".join(f"{n}:{t}" for n, t in TOKENS.items()),
    "embedding_cache_mb": 0,
    "token_budget": 128,  # a costlier embedding: a capacity a Python load generator can exceed 4x
    # On a crowded shared box one embedding can take 100 ms: the default 30 ms bound would
    # refuse almost any queueing, for A and B alike, and measure the box instead of the share.
    "max_queue_wait_ms": 150,
}
TIMEOUT_S = 5.0


def _texts() -> list[str]:
    rows = [
        json.loads(x)["prompt"] for x in (ROOT / "bench/data/labelled_prompts.jsonl").read_text().splitlines()
    ]
    return rows


def _body(texts: list[str], tenant: str, i: int) -> bytes:
    # Distinct from the first token on: no embedding cache hit, no session, whatever the budget.
    words = " ".join(texts[(i * 7 + k) % len(texts)] for k in range(6))
    return json.dumps({"prompt": f"{tenant} request {i}: {words}"}).encode()


async def _open_loop(
    port: int, tenant: str, rate: float, seconds: float, seed: int
) -> list[tuple[int, float]]:
    """Poisson arrivals at `rate`/s whatever the answers; (status, ms) per request (0 = no answer)."""
    texts = _texts()
    http = Http(port, "/route", TOKENS[tenant])
    body = lambda i: _body(texts, tenant, seed * 1_000_000 + i)  # noqa: E731
    return await poisson_arrivals(http, body, rate, seconds, seed, TIMEOUT_S)


async def _closed_loop(port: int, tenant: str, users: int, seconds: float) -> list[tuple[int, float]]:
    http = [Http(port, "/route", TOKENS[tenant]) for _ in range(users)]
    texts = _texts()
    results: list[tuple[int, float]] = []
    end = time.perf_counter() + seconds

    async def user(u: int) -> None:
        i = 0
        while time.perf_counter() < end:
            start = time.perf_counter()
            status = await http[u].post(_body(texts, tenant, 9_000_000 + u * 100_000 + i))
            results.append((status, (time.perf_counter() - start) * 1000))
            i += 1

    await asyncio.gather(*(user(u) for u in range(users)))
    return results


def open_loop(port: int, tenant: str, rate: float, seconds: float, seed: int) -> list[tuple[int, float]]:
    return asyncio.run(_open_loop(port, tenant, rate, seconds, seed))


def closed_loop(port: int, tenant: str, users: int, seconds: float) -> list[tuple[int, float]]:
    return asyncio.run(_closed_loop(port, tenant, users, seconds))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(results: list[tuple[int, float]], seconds: float) -> dict[str, Any]:
    statuses = Counter(s for s, _ in results)
    ok = [ms for s, ms in results if s == 200]
    return {
        "sent": len(results),
        "ok": len(ok),
        "success": len(ok) / len(results) if results else float("nan"),
        "statuses": dict(sorted(statuses.items())),
        "ok_per_s": len(ok) / seconds,
        "p50": pct(ok, 0.50),
        "p99": pct(ok, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of the contended phase")
    parser.add_argument("--baseline", type=float, default=20.0, help="seconds of B alone")
    parser.add_argument("--compare", type=Path, help="checkout of the code to compare with")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    runs = [("this code", run(args, None))]
    if args.compare is not None:
        runs.append((f"{args.compare.name} (before tenants)", run(args, args.compare)))
    report = render(runs, args)
    print(report)
    if args.write:
        path = ROOT / "bench/RESULTS.md"
        text = path.read_text(encoding="utf-8")
        block = f"{BEGIN}\n{report}\n{END}"
        if BEGIN in text:
            text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
        else:
            title = "## Noisy neighbour: fair share between tenants (bench/noisy_neighbour.py)"
            text = text.rstrip("\n") + f"\n\n{title}\n\n{block}\n"
        path.write_text(text, encoding="utf-8")


def run(args: argparse.Namespace, code: Path | None) -> dict[str, Any]:
    env = {"PYTHONPATH": str(code / "service")} if code is not None else {}
    with ServeProcess(env=env, **SERVER) as server, ProcessPoolExecutor(2) as pool:  # type: ignore[arg-type]
        port = server.port
        pool.submit(closed_loop, port, "cluster-a", 4, 2.0).result()  # warm-up, discarded
        # 4 connections keep both inference threads busy without queueing past the wait bound
        capacity_run = pool.submit(closed_loop, port, "cluster-a", 4, 8.0).result()
        capacity = summary(capacity_run, 8.0)["ok_per_s"]
        a_rate, b_rate = 4 * capacity, 0.2 * capacity
        alone = summary(
            pool.submit(open_loop, port, "cluster-b", b_rate, args.baseline, 1).result(), args.baseline
        )
        a_future = pool.submit(open_loop, port, "cluster-a", a_rate, args.duration, 2)
        b_future = pool.submit(open_loop, port, "cluster-b", b_rate, args.duration, 3)
        a_run, b_run = summary(a_future.result(), args.duration), summary(b_future.result(), args.duration)

    ratio = b_run["p99"] / alone["p99"]
    passed = b_run["success"] >= 0.99 and ratio <= 2.0 and a_run["statuses"].get(429, 0) > 0
    return {
        "capacity": capacity,
        "a_rate": a_rate,
        "b_rate": b_rate,
        "alone": alone,
        "a": a_run,
        "b": b_run,
        "ratio": ratio,
        "passed": passed,
    }


def render(runs: list[tuple[str, dict[str, Any]]], args: argparse.Namespace) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")

    def row(code: str, name: str, offered: float, s: dict[str, Any]) -> str:
        codes = ", ".join(f"{k}: {v}" for k, v in s["statuses"].items())
        return (
            f"| {code} | {name} | {offered:.0f}/s | {s['sent']} | {s['success'] * 100:.2f}% | {s['ok_per_s']:.0f} "
            f"| {s['p50']:.1f} | {s['p99']:.1f} | {codes} |"
        )

    lines = [
        f"Run {when}, {os.cpu_count()} CPUs shared with other work (load average "
        f"{os.getloadavg()[0]:.1f} at the end), one `routeiq serve` worker, 2 inference threads, token "
        "budget 128, max queue wait 150 ms, embedding cache off, a distinct prompt per request. "
        "Capacity = A alone, closed loop, 4 connections. B alone "
        f"{args.baseline:.0f} s, then A at 4x and B at 0.2x together {args.duration:.0f} s; open loop "
        "(Poisson); latency client side in ms, of answered (200) requests; status 0 = no answer in 5 s.",
        "",
        "| code | phase / tenant | offered | sent | success | ok/s | p50 | p99 | statuses |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for code, r in runs:
        lines += [
            row(code, f"B alone (capacity {r['capacity']:.0f}/s)", r["b_rate"], r["alone"]),
            row(code, "A with B (4x)", r["a_rate"], r["a"]),
            row(code, "B with A (0.2x)", r["b_rate"], r["b"]),
        ]
    lines.append("")
    for code, r in runs:
        lines.append(
            f"- {code}: B's success with A **{r['b']['success'] * 100:.2f}%** (target ≥ 99%); B's p99 with A "
            f"÷ alone **{r['ratio']:.2f}** (target ≤ 2); A refused with 429: {r['a']['statuses'].get(429, 0)} "
            f"— **{'PASS' if r['passed'] else 'FAIL'}**."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
