"""What RouteIQ's LiteLLM hook adds per request, against LiteLLM's default simple-shuffle,
measured in one run on a real litellm.Router (4 mock deployments, the example config's `auto`).

Measured: `router.async_get_available_deployment(...)` — the whole selection step a request goes
through (healthy-deployment lookup + choice) — per mode:
- simple-shuffle: LiteLLM alone (the baseline);
- sidecar up: RouteIQ's filter hook asking a real `routeiq serve` on 127.0.0.1 (every prompt
  distinct, so the service's embedding cache never hits), then LiteLLM's simple-shuffle;
- sidecar up, cached prompt: the same, one prompt repeated (the service's cache hits);
- sidecar down: nothing listening (connection refused), breaker kept closed, so every request
  pays a first failure;
- circuit open: the breaker is open, the sidecar is not called.
Also the sidecar's own latency: the same /route bodies POSTed directly with httpx (keep-alive).
Each mode is its own model group (same deployments): the hook acts on the groups it is given.
Modes are interleaved request by request so that load from other work on the machine hits all.

Usage: python bench/client_overhead.py [--requests 500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import httpx
import litellm
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests._harness import ServeProcess, free_port  # noqa: E402

from routeiq_client import ClientConfig, ClientMetrics, RouteIQRouting  # noqa: E402
from routeiq_client.litellm_strategy import ClientResources  # noqa: E402
from routeiq_client.request import candidate, route_payload  # noqa: E402

PROMPT = "Summarise the main trade-offs between these two database designs for request {i}: {topic}"
TOPICS = ["event sourcing vs CRUD", "sharding vs replicas", "row vs column store", "OLTP vs OLAP"]


def model_list(group: str = "auto") -> list[dict[str, Any]]:
    config = yaml.safe_load((ROOT / "examples" / "litellm" / "config.yaml").read_text())
    return [{**d, "model_name": group} for d in config["model_list"] if d["model_name"] == "auto"]


def messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": PROMPT.format(i=i, topic=TOPICS[i % len(TOPICS)])}]


def strategy_router(group: str, url: str, **config: Any) -> tuple[litellm.Router, RouteIQRouting]:
    router = litellm.Router(model_list=model_list(group))
    resources = ClientResources(
        ClientConfig(url=url, feedback=False, groups=(group,), **config),
        metrics=ClientMetrics(prometheus=False),
    )
    routing = RouteIQRouting(resources)
    litellm.callbacks.append(routing)
    return router, routing


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(requests: int) -> None:
    service = ServeProcess().start()
    try:
        baseline = litellm.Router(model_list=model_list(), routing_strategy="simple-shuffle")
        up_router, up = strategy_router("up", service.url, deadline_ms=1000)
        cached_router, cached = strategy_router("cached", service.url, deadline_ms=1000)
        down_router, down = strategy_router(
            "down", f"http://127.0.0.1:{free_port()}", failure_threshold=10**9
        )
        open_router, opened = strategy_router("open", service.url, failure_threshold=1, open_seconds=1e6)
        opened.resources.breaker.record_failure()
        direct = httpx.AsyncClient(base_url=service.url, trust_env=False)
        candidates = [c for c in (candidate(d, up.resources.facts(d)) for d in model_list()) if c]
        counter = iter(range(10**9))

        def select(router: litellm.Router, repeat: bool = False) -> Callable[[], Awaitable[Any]]:
            group = router.model_list[0]["model_name"]

            async def call() -> Any:
                return await router.async_get_available_deployment(
                    model=group, messages=messages(0 if repeat else next(counter)), request_kwargs={}
                )

            return call

        def sidecar_only(repeat: bool = False) -> Callable[[], Awaitable[Any]]:
            async def call() -> Any:
                body = route_payload("auto", messages(0 if repeat else next(counter)), None, {}, candidates)
                response = await direct.post("/route", json=body)
                response.raise_for_status()

            return call

        modes: dict[str, Callable[[], Awaitable[Any]]] = {
            "simple-shuffle (LiteLLM default)": select(baseline),
            "RouteIQ, sidecar up": select(up_router),
            "RouteIQ, sidecar up, cached prompt": select(cached_router, repeat=True),
            "RouteIQ, sidecar down (first failure)": select(down_router),
            "RouteIQ, circuit open": select(open_router),
            "sidecar alone: POST /route": sidecar_only(),
            "sidecar alone: POST /route, cached prompt": sidecar_only(repeat=True),
        }
        samples: dict[str, list[float]] = {name: [] for name in modes}
        for fn in modes.values():  # warm-up: connections, caches, lazy imports
            for _ in range(20):
                await fn()
        # Every request runs each mode once, in a rotating order: load from other work on the
        # machine, and the service's own warm/cold state, hit all modes alike.
        names = list(modes)
        for i in range(requests):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                start = time.perf_counter()
                await modes[name]()
                samples[name].append((time.perf_counter() - start) * 1000)
        await direct.aclose()
        for s in (up, cached, down, opened):
            await s.resources.client.aclose()
        snapshot = {
            "up": up.resources.metrics.snapshot()["decisions"],
            "cached": cached.resources.metrics.snapshot()["decisions"],
            "down": down.resources.metrics.snapshot()["decisions"],
            "open": opened.resources.metrics.snapshot()["decisions"],
        }
    finally:
        service.kill()
    report(samples, snapshot, requests)


def report(samples: dict[str, list[float]], snapshot: dict[str, Any], requests: int) -> None:
    base = statistics.median(samples["simple-shuffle (LiteLLM default)"])
    sidecar_p50 = statistics.median(samples["sidecar alone: POST /route"])
    sidecar_cached_p50 = statistics.median(samples["sidecar alone: POST /route, cached prompt"])
    print("## LiteLLM client overhead (bench/client_overhead.py)\n")
    print(
        f"Command: `python bench/client_overhead.py --requests {requests}` "
        f"({datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, {os.cpu_count()} vCPU shared with other "
        f"work, Python {platform.python_version()}, litellm {litellm.__version__ if hasattr(litellm, '__version__') else '1.106.2'}). "
        "Time of `router.async_get_available_deployment` on a real `litellm.Router` with the 4 "
        "mock deployments of examples/litellm/config.yaml, ms per request; each mode "
        f"{len(samples['RouteIQ, sidecar up'])} requests, interleaved request by request, distinct prompts "
        "(no embedding-cache hits).\n"
    )
    print("| mode | p50 | p90 | p99 | added p50 vs simple-shuffle |")
    print("|---|---|---|---|---|")
    for name, values in samples.items():
        p50 = statistics.median(values)
        added = "—" if name.startswith(("simple", "sidecar alone")) else f"{p50 - base:+.3f}"
        print(f"| {name} | {p50:.3f} | {pct(values, 0.9):.3f} | {pct(values, 0.99):.3f} | {added} |")
    up_added = statistics.median(samples["RouteIQ, sidecar up"]) - base
    cached_added = statistics.median(samples["RouteIQ, sidecar up, cached prompt"]) - base
    open_added = statistics.median(samples["RouteIQ, circuit open"]) - base
    print(
        f"\nTargets: circuit open adds ≤ 0.2 ms → **{open_added:+.3f} ms**; new prompts add ≤ the "
        f"sidecar's own p50 + 0.5 ms = {sidecar_p50 + 0.5:.3f} ms → **{up_added:+.3f} ms**; cached "
        f"prompts add ≤ 1 ms → **{cached_added:+.3f} ms**, of which the sidecar's own cached "
        f"answer (httpx, keep-alive) is {sidecar_cached_p50:.3f} ms, so the client adds "
        f"{cached_added - sidecar_cached_p50:+.3f} ms beyond it. Decision sources seen: {snapshot}."
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.requests))
