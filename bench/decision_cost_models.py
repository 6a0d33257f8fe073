"""Decision latency and memory with two models folders, measured in one run.

Each folder is loaded in its own subprocess (so RSS is that configuration's alone); both
processes time the same prompts, in alternating rounds, with the embedding cache on (a cached
decision is the part the complexity / category code changes) and off.

Usage: python bench/decision_cost_models.py BEFORE_CHECKOUT AFTER_CHECKOUT [--iterations 300]
(a checkout = a source tree with service/ and models/, e.g. a `git worktree` of main and this one;
each child imports routeiq from its own checkout.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

PROMPTS = [
    "hi",
    "What is the capital of Australia?",
    "Write a Python function that merges two sorted lists in O(n) time without using sort().",
    "A train leaves at 3pm at 60 mph; another leaves at 4pm at 80 mph. When does the second catch "
    "up? How far have they gone? Explain step by step.",
    "Summarize the following meeting notes in three bullet points: " + "we discussed the budget. " * 30,
]


def child(models: str, iterations: int) -> None:
    from routeiq.decision.schemas import RouteRequest
    from routeiq.engine import Engine
    from routeiq.observability.metrics import Metrics
    from routeiq.pipeline import Context, decide
    from routeiq.settings import Settings

    out: dict[str, object] = {}
    for cache, size in (("cached", 1024), ("uncached", 0)):
        engine = Engine.load(Settings(models_path=Path(models), embedding_cache_size=size), Metrics.create())
        engine.ready = True

        async def run(engine: Engine = engine) -> list[float]:
            times = []
            for i in range(iterations):
                req = RouteRequest(prompt=PROMPTS[i % len(PROMPTS)])
                t = time.perf_counter()
                await decide(engine, req, Context("bench"))
                times.append((time.perf_counter() - t) * 1000)
            return times[len(PROMPTS) :]

        t = np.array(asyncio.run(run()))
        out[cache] = {"p50": float(np.percentile(t, 50)), "p99": float(np.percentile(t, 99))}
    import routeiq

    out["source"] = str(Path(routeiq.__file__).parent)
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--child", action="store_true")
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    if a.child:
        child(a.before, a.iterations)
        return
    results: dict[str, list[dict[str, object]]] = {"before": [], "after": []}
    for _ in range(a.rounds):
        for name, checkout in (("before", a.before), ("after", a.after)):
            folder = str(Path(checkout) / "models")
            cmd = [sys.executable, __file__, folder, folder, "--child", "--iterations", str(a.iterations)]
            env = dict(os.environ, PYTHONPATH=str(Path(checkout) / "service"))
            res = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
            results[name].append(json.loads(res.stdout.strip().splitlines()[-1]))
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {a.iterations} decisions x {a.rounds} rounds\n"
    )
    print("| models | cached decision p50 / p99 ms | uncached decision p50 / p99 ms | max RSS MB |")
    print("|---|---|---|---|")
    for name, runs in results.items():
        c = min(runs, key=lambda r: r["cached"]["p50"])  # type: ignore[index]
        u = min(runs, key=lambda r: r["uncached"]["p50"])  # type: ignore[index]
        rss = max(float(r["rss_mb"]) for r in runs)  # type: ignore[arg-type]
        print(
            f"| {name} | {c['cached']['p50']:.3f} / {c['cached']['p99']:.3f} | "  # type: ignore[index]
            f"{u['uncached']['p50']:.2f} / {u['uncached']['p99']:.2f} | {rss:.0f} |"  # type: ignore[index]
        )


if __name__ == "__main__":
    main()
