"""The chart's alert rules, checked by promtool and evaluated against real scrapes.

Series come from a real `routeiq serve` (healthy, then one with Redis down, a breaker opened by
reported failures and a premium-share target far below its traffic) and from a real
routeiq-client whose sidecar is unreachable. Two scrapes a few seconds apart give each counter
its real increase; promtool replays that as a steady minute-by-minute stream long enough for
every rule's `for:`. Needs `promtool` (Debian `prometheus`), which .ci/run installs.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from routeiq_client import CircuitBreaker, ClientConfig, ClientMetrics, Decider, RouteIQClient
from tests._harness import REPO, ServeProcess, free_port

RULES = REPO / "charts/routeiq/files/prometheus-rules.yaml"
PROMTOOL = shutil.which("promtool")
TARGET = {"namespace": "routeiq", "pod": "routeiq-0"}  # the labels a scrape target adds
MINUTES = 30
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) not installed")


def _series(first: str, second: str) -> list[dict[str, str]]:
    """promtool input_series from two scrapes: counters grow by their real increase per step,
    gauges hold their last value."""

    def parse(text: str) -> dict[str, tuple[str, float]]:
        out: dict[str, tuple[str, float]] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name.endswith("_created") or (family.type == "info" and s.name == "python_info"):
                    continue
                labels = {**s.labels, **TARGET}
                rendered = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
                out[f"{s.name}{{{rendered}}}"] = (family.type, s.value)
        return out

    before, after = parse(first), parse(second)
    series = []
    for key, (kind, value) in after.items():
        start = before.get(key, (kind, 0.0))[1]
        if kind in ("counter", "histogram"):
            values = f"{start}+{max(value - start, 0.0)}x{MINUTES}"
        else:
            values = f"{value}x{MINUTES}"
        series.append({"series": key, "values": values})
    return series


def _promtool_test(tmp_path: Path, name: str, series: list[dict[str, str]], expected: set[str]) -> None:
    alerts = [a["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for a in g["rules"]]
    case = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {
                        "eval_time": f"{MINUTES - 2}m",
                        "alertname": alert,
                        **({} if alert in expected else {"exp_alerts": []}),
                    }
                    for alert in alerts
                ],
            }
        ],
    }
    # Every rule is evaluated: those in `expected` must fire with exactly these labels and
    # annotations (_FIRING), every other one must stay silent.
    for test in case["tests"]:
        for check in test["alert_rule_test"]:
            if check["alertname"] in expected:
                check["exp_alerts"] = _FIRING[check["alertname"]]
    path = tmp_path / f"{name}.test.yaml"
    path.write_text(yaml.safe_dump(case))
    result = subprocess.run(
        [PROMTOOL, "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _alert(labels: dict[str, str], summary: str, description: str) -> list[dict[str, object]]:
    return [{"exp_labels": labels, "exp_annotations": {"summary": summary, "description": description}}]


def _rule(name: str) -> dict[str, object]:
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if rule["alert"] == name:
                return rule
    raise KeyError(name)


def _firing(name: str, labels: dict[str, str], summary: str) -> list[dict[str, object]]:
    rule = _rule(name)
    return _alert(
        {**rule["labels"], "alertname": name, **labels}, summary, rule["annotations"]["description"]
    )  # type: ignore[index]


# Filled by each test before it runs promtool: the alerts it expects, as promtool's exp_alerts.
_FIRING: dict[str, list[dict[str, object]]] = {}


def _scrape(url: str) -> str:
    return httpx.get(f"{url}/metrics", trust_env=False, timeout=5).text


# Only premium candidates: the premium budget has nothing to move traffic to, so the share
# stays over its target (what the alert is for).
ONLY_PREMIUM = [
    {"deployment_id": f"big-{i}", "model": f"x/big-{i}", "tier": "premium", "quality": 0.9} for i in range(2)
]


def _traffic(url: str, n: int, candidates: list[dict[str, object]] | None = None) -> None:
    with httpx.Client(base_url=url, trust_env=False, timeout=10) as client:
        for _ in range(n):
            # One prompt: embedding-cache hits keep the latency series far from the p99 threshold.
            body: dict[str, object] = {"prompt": "hello, how are you?"}
            if candidates:
                body["candidates"] = candidates
            assert client.post("/route", json=body).status_code == 200


def test_promtool_checks_the_rule_file() -> None:
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_healthy_service_fires_nothing(tmp_path: Path) -> None:
    with ServeProcess(tmp_path, premium_share_target=0.5) as server:
        _traffic(server.url, 20)
        first = _scrape(server.url)
        time.sleep(1)
        _traffic(server.url, 40)
        second = _scrape(server.url)
    _promtool_test(tmp_path, "healthy", _series(first, second), set())


def test_a_degraded_service_fires_redis_breaker_and_premium_alerts(tmp_path: Path) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    with ServeProcess(tmp_path, redis_url=dead_redis, premium_share_target=0.01) as server:
        failures = [{"deployment_id": "deepseek-chat", "success": False} for _ in range(10)]
        assert (
            httpx.post(f"{server.url}/feedback", json={"outcomes": failures}, trust_env=False).status_code
            == 200
        )
        _traffic(server.url, 20, candidates=ONLY_PREMIUM)
        first = _scrape(server.url)
        _traffic(server.url, 40, candidates=ONLY_PREMIUM)
        deadline = time.monotonic() + 10
        while 'routeiq_circuit_breaker_state{deployment="deepseek-chat"} 2.0' not in (
            second := _scrape(server.url)
        ):
            assert time.monotonic() < deadline, "breaker gauge never exported as open"
            time.sleep(0.2)
    assert "routeiq_state_degraded 1.0" in second
    share = next(
        s.value
        for f in text_string_to_metric_families(second)
        for s in f.samples
        if s.name == "routeiq_premium_share_ratio"
    )
    _FIRING["RouteIQRedisDegraded"] = _firing(
        "RouteIQRedisDegraded", TARGET, "RouteIQ routeiq-0 runs on local state: Redis unreachable"
    )
    _FIRING["RouteIQCircuitBreakerOpen"] = _firing(
        "RouteIQCircuitBreakerOpen",
        {"deployment": "deepseek-chat"},
        "Deployment deepseek-chat has an open circuit breaker",
    )
    _FIRING["RouteIQPremiumShareOverBudget"] = _firing(
        "RouteIQPremiumShareOverBudget",
        TARGET,
        f"Premium share {share:.4g}% is over its target in routeiq-0".replace(
            f"{share:.4g}%", _percent(share)
        ),
    )
    _promtool_test(
        tmp_path,
        "degraded",
        _series(first, second),
        {"RouteIQRedisDegraded", "RouteIQCircuitBreakerOpen", "RouteIQPremiumShareOverBudget"},
    )


def _percent(value: float) -> str:
    """Prometheus' humanizePercentage: value*100 with %.4g."""
    return f"{value * 100:.4g}%"


def test_clients_without_a_sidecar_fire_the_fallback_alerts(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    metrics = ClientMetrics(registry=registry)
    breaker = CircuitBreaker(failure_threshold=3, open_seconds=600, on_change=metrics.circuit)
    config = ClientConfig(url=f"http://127.0.0.1:{free_port()}", deadline_ms=200)
    decider = Decider(RouteIQClient(config), breaker, metrics)
    healthy = [
        {"model_name": "m", "litellm_params": {"model": f"openai/m{i}"}, "model_info": {"id": f"d{i}"}}
        for i in range(2)
    ]

    async def decide(n: int) -> None:
        for _ in range(n):
            await decider.rank("m", healthy, [{"role": "user", "content": "hi"}], None, None)

    asyncio.run(decide(5))
    first = generate_latest(registry).decode()
    asyncio.run(decide(20))
    second = generate_latest(registry).decode()
    assert "routeiq_client_circuit_open 1.0" in second
    gateway = {"namespace": "routeiq", "pod": "routeiq-0"}
    _FIRING["RouteIQSidecarUnreachable"] = _firing(
        "RouteIQSidecarUnreachable",
        gateway,
        "routeiq-client in routeiq-0 has opened its circuit to the sidecar",
    )
    _FIRING["RouteIQClientsFallingBack"] = _firing(
        "RouteIQClientsFallingBack", gateway, "Gateway routeiq-0 routes 100% of requests without RouteIQ"
    )
    _promtool_test(
        tmp_path, "client", _series(first, second), {"RouteIQSidecarUnreachable", "RouteIQClientsFallingBack"}
    )


def test_a_tenant_past_its_quota_fires_the_tenant_alert_and_not_the_capacity_one(tmp_path: Path) -> None:
    a_token, b_token = "cluster-a-token-0123456789", "cluster-b-token-0123456789"
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text("tenants:\n  cluster-a:\n    max_decisions_per_second: 2\n", encoding="utf-8")
    settings: dict[str, object] = {
        "auth_tokens": f"cluster-a:{a_token},cluster-b:{b_token}",
        "tenants_file": tenants,
    }

    def traffic(url: str, n: int) -> None:
        with httpx.Client(base_url=url, trust_env=False, timeout=10) as client:
            for _ in range(n):
                for token in (a_token, b_token):
                    auth = {"Authorization": f"Bearer {token}"}
                    status = client.post("/route", json={"prompt": "hello, how are you?"}, headers=auth)
                    assert status.status_code in (200, 429)

    with ServeProcess(tmp_path, **settings) as server:
        traffic(server.url, 20)
        first = _scrape(server.url)
        traffic(server.url, 40)
        second = _scrape(server.url)

    def count(text: str, name: str, **labels: str) -> float:
        return sum(
            s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    refused = count(second, "routeiq_tenant_refusals_total", tenant="cluster-a") - count(
        first, "routeiq_tenant_refusals_total", tenant="cluster-a"
    )
    decided = count(second, "routeiq_tenant_decisions_total", tenant="cluster-a") - count(
        first, "routeiq_tenant_decisions_total", tenant="cluster-a"
    )
    assert refused > 30 and count(second, "routeiq_tenant_refusals_total", tenant="cluster-b") == 0
    _FIRING["RouteIQTenantRefused"] = _firing(
        "RouteIQTenantRefused",
        {"namespace": "routeiq", "tenant": "cluster-a", "reason": "over_quota"},
        f"Tenant cluster-a has {_percent(refused / (refused + decided))} of its decisions refused (over_quota)",
    )
    _promtool_test(tmp_path, "tenant", _series(first, second), {"RouteIQTenantRefused"})
