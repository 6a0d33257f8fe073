"""Does RouteIQ keep what LiteLLM does well? Measured in one run on real `litellm.Router`s with
mock_response deployments and a real `routeiq serve` on 127.0.0.1, each figure against LiteLLM's
default simple-shuffle over the same deployments:

- weighted split: one model in two regions, LiteLLM `weight` 9 : 1, beside a budget model;
  `premium` requests. Share of the 9-weight region among the requests served by the model.
- retry success: eco's first choice (gemini-2.0-flash) always raises InternalServerError;
  `num_retries: 2`, cooldowns off (the strictest case: nothing but the retry logic helps).

Usage: python bench/litellm_compose.py [--requests 1000] [--retry-requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import litellm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests._harness import ServeProcess  # noqa: E402

from routeiq_client import ClientConfig, ClientMetrics, RouteIQRouting  # noqa: E402
from routeiq_client.litellm_strategy import ClientResources  # noqa: E402

HI = [{"role": "user", "content": "hi"}]


def dep(group: str, deployment_id: str, model: str, reply: str = "ok", **params: Any) -> dict[str, Any]:
    return {
        "model_name": group,
        "litellm_params": {"model": model, "mock_response": reply, **params},
        "model_info": {"id": deployment_id},
    }


def weighted(group: str) -> list[dict[str, Any]]:
    return [
        dep(group, "gpt-4o-eu", "openai/gpt-4o", weight=9),
        dep(group, "gpt-4o-us", "openai/gpt-4o", weight=1),
        dep(group, "gpt-4o-mini", "openai/gpt-4o-mini"),
    ]


def failing(group: str) -> list[dict[str, Any]]:
    return [
        dep(group, "gemini-2.0-flash", "gemini/gemini-2.0-flash", "litellm.InternalServerError"),
        dep(group, "gpt-4o-mini", "openai/gpt-4o-mini"),
        dep(group, "gpt-4o", "openai/gpt-4o"),
    ]


async def served(router: litellm.Router, group: str, n: int, profile: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for _ in range(n):
        try:
            response = await router.acompletion(
                model=group, messages=HI, metadata={"routeiq_profile": profile}
            )
            out[str(response._hidden_params["model_id"])] += 1
        except Exception as exc:
            out[f"failed: {type(exc).__name__}"] += 1
    return out


async def main(requests: int, retry_requests: int) -> None:
    retry = {"num_retries": 2, "retry_after": 0, "disable_cooldowns": True}
    with ServeProcess() as service:
        config = ClientConfig(
            url=service.url, feedback=False, deadline_ms=1000, groups=("routeiq", "routeiq-retry")
        )
        resources = ClientResources(config, metrics=ClientMetrics(prometheus=False))
        routing = RouteIQRouting(resources)
        litellm.callbacks.append(routing)
        # Same deployments under two group names: only the RouteIQ groups are narrowed.
        split_router = litellm.Router(model_list=weighted("shuffle") + weighted("routeiq"))
        retry_router = litellm.Router(model_list=failing("shuffle-retry") + failing("routeiq-retry"), **retry)
        split: dict[str, Counter[str]] = {"shuffle": Counter(), "routeiq": Counter()}
        retries: dict[str, Counter[str]] = {"shuffle-retry": Counter(), "routeiq-retry": Counter()}
        for _ in range(requests // 50):  # interleaved in blocks: machine load hits both alike
            for group in split:
                split[group] += await served(split_router, group, 50, "premium")
        for _ in range(retry_requests // 50):
            for group in retries:
                retries[group] += await served(retry_router, group, 50, "eco")
        await resources.client.aclose()
        decisions = resources.metrics.snapshot()["decisions"]
    report(split, retries, decisions, requests, retry_requests)


def report(
    split: dict[str, Counter[str]],
    retries: dict[str, Counter[str]],
    decisions: dict[str, int],
    requests: int,
    retry_requests: int,
) -> None:
    print("## LiteLLM composition: weights and retries (bench/litellm_compose.py)\n")
    print(
        f"Command: `python bench/litellm_compose.py --requests {requests} --retry-requests {retry_requests}` "
        f"({datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, {os.cpu_count()} vCPU shared with other work, "
        f"Python {platform.python_version()}, litellm 1.106.2). Real `litellm.Router`s, mock deployments, "
        "a real `routeiq serve`; simple-shuffle and RouteIQ over the same deployments, interleaved in "
        "blocks of 50.\n"
    )
    print(
        "| weighted split (premium, weights 9 : 1) | gpt-4o-eu | gpt-4o-us | gpt-4o-mini | eu share of gpt-4o |"
    )
    print("|---|---|---|---|---|")
    for group, label in (("shuffle", "simple-shuffle"), ("routeiq", "RouteIQ + simple-shuffle")):
        c = split[group]
        share = c["gpt-4o-eu"] / max(1, c["gpt-4o-eu"] + c["gpt-4o-us"])
        print(f"| {label} | {c['gpt-4o-eu']} | {c['gpt-4o-us']} | {c['gpt-4o-mini']} | {share:.1%} |")
    print(
        "\n| retries (eco, gemini-2.0-flash always fails, num_retries 2, no cooldown) | succeeded | failed | served by |"
    )
    print("|---|---|---|---|")
    for group, label in (("shuffle-retry", "simple-shuffle"), ("routeiq-retry", "RouteIQ + simple-shuffle")):
        c = retries[group]
        failed = sum(n for k, n in c.items() if k.startswith("failed"))
        ok = {k: n for k, n in c.items() if not k.startswith("failed")}
        print(f"| {label} | {sum(ok.values())} / {sum(c.values())} | {failed} | {dict(sorted(ok.items()))} |")
    print(f"\nRouteIQ decision sources (one /route per call, `retry` = a retry that reused it): {decisions}.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--retry-requests", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.retry_requests))
