"""The caller's deadline (`X-RouteIQ-Deadline-Ms`): what cannot be answered in time is refused
at once, and an embedding is never spent on a request whose caller has already given up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_client

PROMPT = {"prompt": "Prove that there are infinitely many primes, step by step."}


class CountingEmbedder:
    """The real embedder, counting its calls."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def embed(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.inner.embed(*args, **kwargs)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    # One inference thread and a queue wait cap far above the deadlines used here, so only the
    # deadline refuses; no cache, so every request needs an embedding.
    with make_client(inference_threads=1, max_queue_wait_ms=5000, embedding_cache_mb=0) as c:
        yield c


def _engine(client: TestClient) -> Any:
    return client.app.state.engine  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan", "inf", "1e9", ""])
def test_a_bad_deadline_is_a_400_naming_the_header(client: TestClient, value: str) -> None:
    response = client.post("/route", json=PROMPT, headers={"X-RouteIQ-Deadline-Ms": value})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "bad_request" and error["field"] == "X-RouteIQ-Deadline-Ms"


def test_a_decision_that_cannot_finish_in_time_is_refused_at_once(client: TestClient) -> None:
    queue = _engine(client).admission.embeddings
    saved = queue.avg_embed_s
    queue.avg_embed_s = 0.050  # one embedding ahead of this one: an expected wait of 50 ms
    assert queue.try_acquire()
    try:
        late = client.post("/route", json=PROMPT, headers={"X-RouteIQ-Deadline-Ms": "40"})
        assert late.status_code == 503, late.text
        assert late.json()["error"]["type"] == "deadline_exceeded"
        assert late.headers["Retry-After"] == "1" and late.headers["X-Request-ID"]
        roomy = client.post("/route", json=PROMPT, headers={"X-RouteIQ-Deadline-Ms": "2000"})
        assert roomy.status_code == 200, roomy.text
        assert client.post("/route", json=PROMPT).status_code == 200  # no deadline, no such check
    finally:
        queue.release()
        queue.avg_embed_s = saved
    metrics = client.get("/metrics").text
    assert 'routeiq_requests_rejected_total{reason="deadline"} 1.0' in metrics


def test_a_request_whose_deadline_passed_in_the_queue_is_not_embedded(client: TestClient) -> None:
    engine = _engine(client)
    counting = CountingEmbedder(engine.embedder)
    engine.embedder = counting
    try:
        # The only inference thread is busy for 300 ms; admission does not know (nothing it
        # admitted is running), so the request is admitted and waits for the thread.
        busy = engine.executor.submit(time.sleep, 0.3)
        response = client.post(
            "/route",
            json={"prompt": "a prompt never seen before 7f3a"},
            headers={"X-RouteIQ-Deadline-Ms": "100"},
        )
        busy.result()
        assert response.status_code == 503 and response.json()["error"]["type"] == "deadline_exceeded"
        assert counting.calls == 0  # its caller had given up: no embedding spent on it
        ok = client.post(
            "/route", json={"prompt": "another new prompt 7f3b"}, headers={"X-RouteIQ-Deadline-Ms": "5000"}
        )
        assert ok.status_code == 200 and counting.calls == 1
    finally:
        engine.embedder = counting.inner


def test_an_idle_worker_always_tries_so_a_stale_estimate_cannot_refuse_forever(client: TestClient) -> None:
    queue = _engine(client).admission.embeddings
    queue.avg_embed_s = 1.0  # as measured during a burst of CPU contention, now over
    response = client.post(
        "/route",
        json={"prompt": "a fresh prompt after the burst 91c2"},
        headers={"X-RouteIQ-Deadline-Ms": "50"},
    )
    assert response.status_code == 200, response.text
    assert queue.avg_embed_s < 1.0  # the embedding that ran corrects the estimate
