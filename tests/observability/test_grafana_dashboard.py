"""The chart's Grafana dashboard: well-formed, every query parses (promtool), and every metric
it reads exists in a real scrape of the service and of routeiq-client."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from routeiq_client import CircuitBreaker, ClientConfig, ClientMetrics, Decider, RouteIQClient
from tests._harness import REPO, free_port
from tests.conftest import make_client

DASHBOARD = REPO / "charts/routeiq/files/grafana-dashboard.json"
PROMTOOL = shutil.which("promtool")
METRIC = re.compile(r"\b((?:routeiq|process|python)_[a-z_]+)\b")


def _panels() -> list[dict]:
    return [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]


def _exprs() -> list[str]:
    return [t["expr"] for p in _panels() for t in p["targets"]]


def test_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "routeiq" and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"] and all(t["refId"] for t in panel["targets"]), panel["title"]
    names = {v["name"] for v in dashboard["templating"]["list"]}
    assert names == {"datasource", "namespace"}


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) not installed")
def test_every_query_parses(tmp_path: Path) -> None:
    rules = [
        {
            "record": f"routeiq:dashboard_query_{i}",
            "expr": e.replace("$__rate_interval", "5m").replace("$namespace", ".*"),
        }
        for i, e in enumerate(_exprs())
    ]
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_metric_it_reads_is_in_a_real_scrape() -> None:
    with make_client() as client:
        assert client.post("/route", json={"prompt": "hello"}).status_code == 200
        service = client.get("/metrics").text
    registry = CollectorRegistry()
    metrics = ClientMetrics(registry=registry)
    decider = Decider(
        RouteIQClient(ClientConfig(url=f"http://127.0.0.1:{free_port()}", deadline_ms=100)),
        CircuitBreaker(failure_threshold=3, open_seconds=60, on_change=metrics.circuit),
        metrics,
    )
    healthy = [
        {"model_name": "m", "litellm_params": {"model": f"openai/m{i}"}, "model_info": {"id": f"d{i}"}}
        for i in range(2)
    ]
    asyncio.run(decider.rank("m", healthy, [{"role": "user", "content": "hi"}], None, None))
    # Families by name (a labelled family with no series yet is still declared, HELP and TYPE).
    declared = {
        family.name
        for text in (service, generate_latest(registry).decode())
        for family in text_string_to_metric_families(text)
    }
    used = {re.sub(r"_(total|bucket|count|sum)$", "", m) for e in _exprs() for m in METRIC.findall(e)}
    assert used and used <= declared, sorted(used - declared)
