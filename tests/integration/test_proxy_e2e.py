"""End to end: `litellm --config examples/litellm/config.yaml` on 127.0.0.1 with RouteIQ's
callback, mock deployments and a real routeiq service; everything checked over HTTP.

Needs `litellm[proxy]` (large): marked `proxy`, deselected by default, run by .ci/run as its own
step (`pytest -m proxy`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._harness import ServeProcess, written_rows

from .conftest import EXAMPLE_CONFIG
from .litellm_proxy import BUDGET_MS, Proxy

pytestmark = pytest.mark.proxy

AUTO_IDS = {"gpt-4o-mini", "gemini-2.0-flash", "gpt-4o", "claude-sonnet-4"}
HI = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}


KEY = "proxy-e2e-admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rows")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, rows: Path) -> Iterator[ServeProcess]:
    """This module's own service: with the admin API and training rows, to see what the proxy's
    outcomes carry."""
    with ServeProcess(tmp_path_factory.mktemp("service"), admin_key=KEY, training_rows_dir=rows) as proc:
        yield proc


@pytest.fixture(scope="module")
def proxy(service: ServeProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    proxy = Proxy(service.url, tmp_path_factory.mktemp("proxy"), EXAMPLE_CONFIG)
    proxy.wait_ready()
    yield proxy
    proxy.stop()


def model_id(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.headers["x-litellm-model-id"]


def test_chat_completions_are_routed_and_the_profile_header_changes_the_choice(proxy: Proxy) -> None:
    assert model_id(proxy.post("/v1/chat/completions", HI)) in AUTO_IDS
    eco = proxy.post("/v1/chat/completions", HI, profile="eco")
    premium = proxy.post("/v1/chat/completions", HI, profile="premium")
    assert model_id(eco) == "gemini-2.0-flash"
    assert model_id(premium) in {"gpt-4o", "claude-sonnet-4"}
    assert premium.json()["choices"][0]["message"]["content"] == f"served by {model_id(premium)}"


def test_responses_and_embeddings(proxy: Proxy) -> None:
    responses = proxy.post("/v1/responses", {"model": "auto", "input": "hi"}, profile="eco")
    assert model_id(responses) == "gemini-2.0-flash"  # the header reaches /v1/responses too
    assert responses.json()["output"][0]["content"][0]["text"] == "served by gemini-2.0-flash"
    embeddings = proxy.post("/v1/embeddings", {"model": "embed", "input": "hello"})
    assert model_id(embeddings) in {"text-embedding-3-small", "text-embedding-3-large"}
    assert embeddings.json()["data"][0]["embedding"] == [0.1, 0.2, 0.3]


def test_outcomes_are_reported_to_the_service(proxy: Proxy, service: ServeProcess) -> None:
    proxy.post("/v1/chat/completions", HI, profile="premium")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        stats = service.stats()["deployments"]
        assert isinstance(stats, dict)
        if sum(s["successes"] for s in stats.values()) >= 5:
            return
        time.sleep(0.1)
    pytest.fail(f"outcomes did not arrive: {service.stats()}")


def test_the_proxys_outcomes_count_for_their_experiment_and_join_their_training_rows(
    proxy: Proxy, service: ServeProcess, rows: Path
) -> None:
    experiment = {
        "name": "proxy-ab",
        "assign_by": ["request"],
        "variants": [
            {"name": "control", "weight": 1, "strategy": "centroid"},
            {"name": "treatment", "weight": 1, "profile": "eco"},
        ],
    }
    started = httpx.post(f"{service.url}/admin/experiments", json=experiment, headers=ADMIN, trust_env=False)
    assert started.status_code == 201, started.text
    try:
        # Each response names its decision (x-routeiq-request-id): those rows must appear.
        ids = set()
        for _ in range(3):
            response = proxy.post("/v1/chat/completions", HI)
            model_id(response)
            ids.add(response.headers["x-routeiq-request-id"])
        readout_url = f"{service.url}/admin/experiments/proxy-ab"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            readout = httpx.get(readout_url, headers=ADMIN, trust_env=False).json()
            joined = {r["request_id"] for r in _rows(rows)} & ids
            if sum(v["outcomes"] for v in readout["variants"]) >= 3 and joined == ids:
                break
            time.sleep(0.1)
        assert readout["decisions"] == 3
        assert sum(v["successes"] for v in readout["variants"]) == 3, readout["variants"]
        assert joined == ids
    finally:
        httpx.post(f"{service.url}/admin/experiments/proxy-ab/stop", headers=ADMIN, trust_env=False)


def _rows(folder: Path) -> list[dict[str, object]]:
    return written_rows(folder)


def test_service_slow_requests_still_succeed(proxy: Proxy, service: ServeProcess) -> None:
    service.pause()  # accepts connections, never answers
    try:
        for _ in range(2):
            start = time.perf_counter()
            assert model_id(proxy.post("/v1/chat/completions", HI, profile="eco")) in AUTO_IDS
            # Bounded by the budget, not by the (indefinitely) stalled sidecar.
            assert time.perf_counter() - start < BUDGET_MS / 1000 + 3
    finally:
        service.resume()


def test_service_down_requests_still_succeed(proxy: Proxy, service: ServeProcess) -> None:
    service.kill()
    served = {model_id(proxy.post("/v1/chat/completions", HI, profile="eco")) for _ in range(4)}
    assert served <= AUTO_IDS  # LiteLLM's own selection over every healthy deployment
    assert model_id(proxy.post("/v1/responses", {"model": "auto", "input": "hi"})) in AUTO_IDS
    assert model_id(proxy.post("/v1/embeddings", {"model": "embed", "input": "hello"})) in {
        "text-embedding-3-small",
        "text-embedding-3-large",
    }
