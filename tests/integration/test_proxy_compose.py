"""RouteIQ composed with LiteLLM inside a real `litellm --config` proxy (marker `proxy`): what a
LiteLLM user relies on keeps working with RouteIQ installed, and RouteIQ's decision is visible
to the proxy's caller."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._harness import ServeProcess

from .litellm_proxy import Proxy

pytestmark = pytest.mark.proxy

CONFIG = Path(__file__).with_name("litellm_compose.yaml")


def chat(model: str = "auto", content: str = "hi") -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": content}]}


@pytest.fixture(scope="module")
def proxy(service: ServeProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    proxy = Proxy(service.url, tmp_path_factory.mktemp("compose"), CONFIG)
    proxy.wait_ready()
    yield proxy
    proxy.stop()


def served_by(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.headers["x-litellm-model-id"]


def test_weights_split_the_two_regions_of_the_chosen_model(proxy: Proxy) -> None:
    split = Counter(served_by(proxy.post("/v1/chat/completions", chat(), "premium")) for _ in range(100))
    # premium is gpt-4o; which region follows LiteLLM's 9 : 1 weights (P(no us) = 0.9^100 < 1e-4).
    assert set(split) == {"gpt-4o-eu", "gpt-4o-us"}, split
    assert split["gpt-4o-eu"] >= 75, split


def test_retries_move_to_the_next_ranked_model_and_never_repeat_the_failure(proxy: Proxy) -> None:
    served = [proxy.post("/v1/chat/completions", chat(), "eco") for _ in range(8)]
    assert all(served_by(r) != "gemini-2.0-flash" for r in served), [r.status_code for r in served]


def test_litellms_complexity_router_works_beside_routeiq(proxy: Proxy) -> None:
    smart = proxy.post("/v1/chat/completions", chat("smart"))
    assert served_by(smart) == "cheap-1"
    assert "x-routeiq-model" not in smart.headers  # not an opted-in group: RouteIQ stayed out
    routed = proxy.post("/v1/chat/completions", chat(), "premium")
    assert routed.headers["x-routeiq-model"] == "openai/gpt-4o"


def test_the_decision_is_in_response_headers(proxy: Proxy) -> None:
    response = proxy.post("/v1/chat/completions", chat(), "eco")
    assert served_by(response) == "gpt-4o-mini"  # after gemini-2.0-flash failed
    assert response.headers["x-routeiq-profile"] == "eco"
    assert response.headers["x-routeiq-model"] == "openai/gpt-4o-mini"
    assert response.headers["x-routeiq-request-id"]
    assert {"x-routeiq-tier", "x-routeiq-category", "x-routeiq-strategy"} <= set(response.headers)


@pytest.mark.parametrize(("profile", "why"), [("ecoo", "unknown_profile"), ("free", "no_candidate")])
def test_a_request_routeiq_refuses_is_a_clear_400(proxy: Proxy, profile: str, why: str) -> None:
    response = proxy.post("/v1/chat/completions", chat(), profile)
    assert response.status_code == 400, (response.status_code, response.text[:300])
    message = response.json()["error"]["message"]
    assert why in message and "auto" in message, message


def test_client_metrics_are_on_the_proxys_metrics(proxy: Proxy) -> None:
    served_by(proxy.post("/v1/chat/completions", chat(), "premium"))
    metrics = proxy.http.get("/metrics/")  # LiteLLM mounts it as a sub-app: /metrics redirects here
    assert metrics.status_code == 200, metrics.text[:300]
    decided = [
        line for line in metrics.text.splitlines() if line.startswith("routeiq_client_decisions_total")
    ]
    assert any('source="sidecar"' in line for line in decided), metrics.text[:2000]


def test_a_bad_client_setting_stops_the_proxy_at_start_up(service: ServeProcess, tmp_path: Path) -> None:
    proxy = Proxy(service.url, tmp_path, CONFIG, ROUTEIQ_CLIENT_URL="127.0.0.1:8400")
    try:
        with pytest.raises(RuntimeError):
            proxy.wait_ready()
    finally:
        proxy.stop()
    assert proxy.proc.returncode == 2
    lines = [line for line in proxy.output().splitlines() if "routeiq" in line.lower()]
    assert len(lines) == 1 and "ROUTEIQ_CLIENT_URL='127.0.0.1:8400'" in lines[0], proxy.output()[-2000:]
