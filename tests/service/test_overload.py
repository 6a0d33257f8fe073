"""Overload: past the embedding queue depth a request is answered 503 at once, traceably, and
before its body is read."""

from __future__ import annotations

from tests.conftest import make_client


def test_full_embedding_queue_sheds_new_prompts_but_serves_cached_ones() -> None:
    # Only the depth gate here: with the default 30 ms wait gate, a loaded machine's slower
    # embeddings would refuse the places this test occupies by hand before the queue is full.
    with make_client(inference_threads=1, queue_depth_per_thread=3, max_queue_wait_ms=60_000) as client:
        engine = client.app.state.engine  # type: ignore[attr-defined]
        assert engine.admission.embeddings.capacity == 3  # threads x depth
        cached = {"prompt": "translate good morning into French"}
        assert client.post("/route", json=cached).status_code == 200

        # Occupy every place in the queue, as three embeddings in progress would.
        for _ in range(3):
            assert engine.admission.embeddings.try_acquire()
        try:
            shed = client.post(
                "/route", json={"prompt": "write a haiku about queues"}, headers={"X-Request-ID": "abc-123"}
            )
            assert shed.status_code == 503
            assert shed.headers["Retry-After"] == "1"
            assert shed.headers["X-Request-ID"] == "abc-123"
            assert shed.json()["error"]["type"] == "overloaded"
            # While the queue is full, decisions are refused before their body is read, so a
            # cached prompt is refused too (telling it apart would mean parsing every refusal).
            assert client.post("/route", json=cached).status_code == 503
            metrics = client.get("/metrics").text
            assert 'routeiq_requests_rejected_total{reason="queue_full"} 2.0' in metrics
        finally:
            for _ in range(3):
                engine.admission.embeddings.release()
        assert client.post("/route", json={"prompt": "write a haiku about queues"}).status_code == 200
        assert engine.admission.embeddings.in_flight == 0
        # One place left: a new prompt is admitted, a cached one needs none at all.
        for _ in range(2):
            assert engine.admission.embeddings.try_acquire()
        try:
            assert client.post("/route", json=cached).status_code == 200
        finally:
            for _ in range(2):
                engine.admission.embeddings.release()


def test_queue_capacity_follows_inference_threads() -> None:
    with make_client(inference_threads=2) as client:
        engine = client.app.state.engine  # type: ignore[attr-defined]
        assert engine.admission.embeddings.capacity == 2 * engine.settings.queue_depth_per_thread
