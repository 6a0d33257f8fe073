"""Cached-decision cost beside 0, 1k and 10k running experiments that do not apply to it.

Each code tree runs in its own process (this tree, and with `--main DIR` the `service/` folder
of the code to compare with, e.g. `git archive main service | tar -x -C DIR`), in alternating
rounds, so machine noise falls on both. In each: the real pipeline (`pipeline.decide`) on the
real engine, in memory state, warm embedding cache (one prompt), and a shared config holding N
experiments a request does not take part in (half stopped, half scoped to other teams'
profiles) plus one that assigns it (by user, last in order).

    .venv/bin/python bench/experiment_assignment.py --main /tmp/main-code/service
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COUNTS = (0, 1_000, 10_000)


async def worker(n: int) -> dict[int, list[float]]:
    from prometheus_client import CollectorRegistry

    from routeiq.decision.experiments import ExperimentSpec, VariantSpec
    from routeiq.decision.schemas import RouteRequest
    from routeiq.engine import Engine
    from routeiq.observability.metrics import Metrics
    from routeiq.pipeline import Context, decide
    from routeiq.settings import Settings
    from routeiq.state.memory import MemoryState
    from routeiq.state.records import SharedConfig

    settings = Settings(models_path=ROOT / "models")
    engine = Engine.load(settings, Metrics.create(CollectorRegistry()), MemoryState())
    engine.warm_up()
    base = engine.snapshot
    variants = [VariantSpec(name="a", weight=1), VariantSpec(name="b", weight=1)]
    live = ExperimentSpec(name="live", variants=variants, assign_by=["user"], created_at=1e9)
    out: dict[int, list[float]] = {}
    for count in COUNTS:
        others = [
            ExperimentSpec(name=f"stopped-{i}", variants=variants, status="stopped", created_at=i)
            if i % 2
            else ExperimentSpec(name=f"team-{i}", variants=variants, profile=f"team-{i}", created_at=i)
            for i in range(count)
        ]
        engine.publish(base.with_config(SharedConfig(version=1, experiments=(*others, live))))
        samples = []
        for i in range(n + 50):
            request = RouteRequest(prompt="hello there", user=f"u{i % 97}")
            start = time.perf_counter()
            response = await decide(engine, request, Context(request_id=f"r{i}"))
            if i >= 50:  # the first 50 warm the cache and the new snapshot
                samples.append((time.perf_counter() - start) * 1e6)
            assert response.experiment == "live", response.reason
        out[count] = samples
    await engine.close()
    return out


def run_tree(code: Path, n: int) -> dict[int, list[float]]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    cmd = [sys.executable, __file__, "--worker", "--n", str(n)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, timeout=600)
    return {int(k): v for k, v in json.loads(done.stdout.splitlines()[-1]).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--main", type=Path, help="a `service/` folder of the code to compare with")
    parser.add_argument("--n", type=int, default=400, help="decisions per count and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(asyncio.run(worker(args.n))))
        return
    trees = {"this tree": ROOT / "service"}
    if args.main:
        trees = {"main": args.main.resolve(), **trees}
    samples: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.rounds):
        for name, code in trees.items():
            for count, xs in run_tree(code, args.n).items():
                samples.setdefault((name, count), []).extend(xs)
    print(
        f"Command: `.venv/bin/python bench/experiment_assignment.py{' --main DIR' if args.main else ''} "
        f"--n {args.n} --rounds {args.rounds}`  "
    )
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average at the end {os.getloadavg()[0]:.1f} (a shared box).  "
    )
    print(f"Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}\n")
    print("| code | experiments that do not apply | p50 µs | p90 µs | p50 / same code at 0 |")
    print("|---|---:|---:|---:|---:|")
    for name in trees:
        zero = statistics.median(samples[(name, 0)])
        for count in COUNTS:
            xs = sorted(samples[(name, count)])
            p50 = statistics.median(xs)
            print(f"| {name} | {count:,} | {p50:.0f} | {xs[int(len(xs) * 0.9)]:.0f} | {p50 / zero:.2f} |")


if __name__ == "__main__":
    main()
