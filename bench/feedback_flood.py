"""Feedback flood: does one tenant's /feedback flood slow another tenant's decisions?

One real `routeiq serve` (one worker, in-memory state) with two client tokens. Tenant B sends
`/route` with one cached prompt (no embedding: what it measures is the event loop, not the
inference threads) as an open loop at `--rate`/s; tenant A floods `POST /feedback` with
1000-outcome batches at `--flood-rate`/s, at most `--connections` in flight, whatever the
answers (a client stuck in a retry loop). In one run, per code:

1. B alone (the baseline of this run);
2. B while A floods, A without a quota;
3. B while A floods, A with `max_feedback_outcomes_per_second: --quota` (this code only; put in
   force through the tenants file and `POST /admin/tenants/reload`).

With `--compare DIR` (a checkout of other code, e.g. `git archive main | tar -x -C DIR`) phases 1
and 2 then run against it, minutes apart on the same machine.

Before that, in process and free of the load generators (`--loop-stretch` alone for one code):
the longest stretch one 1000-outcome `/feedback` holds the event loop without a turn for
anything else (a ticker task timed between its turns), and the whole call, over 40 calls
through the app (httpx's ASGI transport), in a subprocess per code, twice, alternating.

Usage: python bench/feedback_flood.py [--seconds 20] [--rate 50] [--flood-rate 60] [--connections 4]
       [--quota 2000] [--compare DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
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

TOKENS = {"cluster-a": "flood-cluster-a-0123456789", "cluster-b": "quiet-cluster-b-0123456789"}
KEY = "feedback-flood-admin-0123456789"
PROMPT = json.dumps({"prompt": "translate good morning into French"}).encode()
BATCH = json.dumps(
    {
        "outcomes": [
            {"deployment_id": "gpt-4o", "success": i % 4 != 0, "latency_ms": 100.0 + i, "quality": 0.8}
            for i in range(1000)
        ]
    }
).encode()
TIMEOUT_S = 5.0


async def _decisions(port: int, rate: float, seconds: float, seed: int) -> list[tuple[int, float]]:
    """B: Poisson arrivals at `rate`/s whatever the answers; (status, ms) each (0 = no answer)."""
    http = Http(port, "/route", TOKENS["cluster-b"])
    return await poisson_arrivals(http, lambda _: PROMPT, rate, seconds, seed, TIMEOUT_S)


async def _flood(port: int, rate: float, connections: int, seconds: float) -> list[tuple[int, float]]:
    """A: 1000-outcome /feedback batches at `rate`/s (evenly spaced) whatever the answers, at
    most `connections` in flight (an arrival that finds them all busy is skipped, status -1):
    the same offered load whether the service accepts the batches or refuses them."""
    http = [Http(port, "/feedback", TOKENS["cluster-a"]) for _ in range(connections)]
    free = list(range(connections))
    results: list[tuple[int, float]] = []

    async def one(u: int) -> None:
        start = time.perf_counter()
        try:
            status = await asyncio.wait_for(http[u].post(BATCH), TIMEOUT_S)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            status = 0
            http[u].idle.clear()
        results.append((status, (time.perf_counter() - start) * 1000))
        free.append(u)

    tasks = []
    begin = time.perf_counter()
    n = 0
    while n / rate < seconds:
        delay = begin + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        n += 1
        if not free:
            results.append((-1, 0.0))
            continue
        tasks.append(asyncio.create_task(one(free.pop())))
    await asyncio.gather(*tasks)
    return results


def decisions(port: int, rate: float, seconds: float, seed: int) -> list[tuple[int, float]]:
    return asyncio.run(_decisions(port, rate, seconds, seed))


def flood(port: int, rate: float, connections: int, seconds: float) -> list[tuple[int, float]]:
    return asyncio.run(_flood(port, rate, connections, seconds))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def summary(results: list[tuple[int, float]], seconds: float) -> dict[str, Any]:
    ok = [ms for s, ms in results if s == 200]
    return {
        "sent": len(results),
        "statuses": dict(sorted(Counter(s for s, _ in results).items())),
        "ok_per_s": len(ok) / seconds,
        "p50": pct(ok, 0.50),
        "p99": pct(ok, 0.99),
        "max": max(ok) if ok else float("nan"),
    }


def run(
    args: argparse.Namespace, code: Path | None
) -> list[tuple[str, dict[str, Any], dict[str, Any] | None]]:
    env = {"PYTHONPATH": str(code / "service"), "ROUTEIQ_MODELS_PATH": str(ROOT / "models")} if code else {}
    tenants = Path(tempfile.mkdtemp(prefix="feedback-flood-")) / "tenants.yaml"
    tenants.write_text("tenants:\n  cluster-a: {}\n", encoding="utf-8")
    server = ServeProcess(
        env=env,
        auth_tokens=",".join(f"{n}:{t}" for n, t in TOKENS.items()),
        tenants_file=tenants,
        admin_key=KEY,
    )
    phases: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    with server, ProcessPoolExecutor(2) as pool:
        port = server.port
        pool.submit(decisions, port, args.rate, 2.0, 0).result()  # warm-up (caches the prompt)
        pool.submit(flood, port, 10.0, 1, 2.0).result()
        alone = pool.submit(decisions, port, args.rate, args.seconds, 1).result()
        phases.append(("B alone", summary(alone, args.seconds), None))

        def contended(name: str, seed: int) -> None:
            a = pool.submit(flood, port, args.flood_rate, args.connections, args.seconds)
            b = pool.submit(decisions, port, args.rate, args.seconds, seed)
            phases.append((name, summary(b.result(), args.seconds), summary(a.result(), args.seconds)))

        contended("B while A floods, no quota", 2)
        if code is None:
            tenants.write_text(
                f"tenants:\n  cluster-a:\n    max_feedback_outcomes_per_second: {args.quota:g}\n",
                encoding="utf-8",
            )
            reload = asyncio.run(_admin_reload(port))
            assert reload == 200, reload
            contended(f"B while A floods, A's quota {args.quota:g} outcomes/s", 3)
    return phases


async def _admin_reload(port: int) -> int:
    http = Http(port, "/admin/tenants/reload", KEY)
    return await http.post(b"")


def render(
    runs: list[tuple[str, list[tuple[str, dict[str, Any], dict[str, Any] | None]]]], args: argparse.Namespace
) -> str:
    lines = [
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} CPUs "
        f"shared with other work (load average {os.getloadavg()[0]:.1f} at the end), Python "
        f"{platform.python_version()}; one `routeiq serve` worker, in-memory state. B: `/route`, one "
        f"cached prompt, open loop {args.rate:g}/s; A: 1000-outcome `/feedback` batches offered at "
        f"{args.flood_rate:g}/s, at most {args.connections} in flight (status -1: skipped, all "
        f"busy); {args.seconds:g} s per phase. Latency client side in ms, of answered (200) requests.",
        "",
        "| code | phase | B p50 | B p99 | B max | B statuses | A outcomes accepted/s | A statuses |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for code, phases in runs:
        for name, b, a in phases:
            codes = ", ".join(f"{k}: {v}" for k, v in b["statuses"].items())
            if a is None:
                a_rate, a_codes = "—", "—"
            else:
                a_rate = f"{a['ok_per_s'] * 1000:,.0f}"
                a_codes = ", ".join(f"{k}: {v}" for k, v in a["statuses"].items())
            lines.append(
                f"| {code} | {name} | {b['p50']:.1f} | {b['p99']:.1f} | {b['max']:.1f} | {codes} | "
                f"{a_rate} | {a_codes} |"
            )
    return "\n".join(lines)


def loop_stretch() -> str:
    import httpx
    from tests.conftest import make_client

    token = TOKENS["cluster-a"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with make_client(auth_tokens=f"cluster-a:{token}") as client:

        async def once(http: httpx.AsyncClient) -> tuple[float, float]:
            gaps: list[float] = []
            done = False

            async def ticker() -> None:
                last = time.perf_counter()
                while not done:
                    await asyncio.sleep(0)
                    now = time.perf_counter()
                    gaps.append(now - last)
                    last = now

            task = asyncio.create_task(ticker())
            await asyncio.sleep(0)
            start = time.perf_counter()
            answer = await http.post("/feedback", content=BATCH, headers=headers)
            total = time.perf_counter() - start
            done = True
            await task
            assert answer.status_code == 200, answer.text
            return max(gaps), total

        async def scenario() -> list[tuple[float, float]]:
            transport = httpx.ASGITransport(app=client.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://routeiq") as http:
                for _ in range(5):
                    await once(http)
                return [await once(http) for _ in range(40)]

        rows = client.portal.call(scenario)  # type: ignore[union-attr]
    gaps, totals = sorted(g * 1000 for g, _ in rows), sorted(t * 1000 for _, t in rows)
    return (
        f"{statistics.median(gaps):.2f} | {gaps[int(0.9 * len(gaps))]:.2f} | {statistics.median(totals):.2f}"
    )


def loop_stretches(code: Path | None) -> str:
    env = dict(os.environ)
    if code is not None:
        env |= {"PYTHONPATH": f"{code / 'service'}:{ROOT}", "ROUTEIQ_MODELS_PATH": str(ROOT / "models")}
    done = subprocess.run(
        [sys.executable, __file__, "--loop-stretch"], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=50.0, help="B's decisions per second")
    parser.add_argument("--flood-rate", type=float, default=60.0, help="A's batches per second")
    parser.add_argument("--connections", type=int, default=4, help="A's most batches in flight")
    parser.add_argument("--quota", type=float, default=2000.0, help="A's outcomes per second in phase 3")
    parser.add_argument("--compare", type=Path, help="checkout of the code to compare with")
    parser.add_argument("--loop-stretch", action="store_true", help="only the in-process measure, this code")
    args = parser.parse_args()
    if args.loop_stretch:
        print(loop_stretch())
        return
    codes: list[tuple[str, Path | None]] = [("this code", None)]
    if args.compare is not None:
        codes.append((args.compare.name, args.compare))
    stretch = [
        "| code | round | longest stretch p50 ms | p90 ms | whole call p50 ms |",
        "|---|---|---|---|---|",
    ]
    for round_ in (1, 2):
        stretch += [f"| {name} | {round_} | {loop_stretches(code)} |" for name, code in codes]
    print("\n".join(stretch) + "\n")
    runs = [("this code", run(args, None))]
    if args.compare is not None:
        runs.append((args.compare.name, run(args, args.compare)))
    print(render(runs, args))


if __name__ == "__main__":
    main()
