"""The process lifecycle, on a real `routeiq serve`: drain on SIGTERM with requests in flight
(none lost, exit 0), fast and clear start-up failures, JSON logs end to end."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest

from routeiq.settings import default_models_path
from tests._harness import ServeProcess

pytestmark = pytest.mark.slow

BATCHES = 8
ITEMS = 64
DELAY = 1.0


def batch_body(batch: int) -> list[dict]:
    # distinct, fairly long prompts: every item is a real embedding (the cache is off too)
    return [
        {
            "prompt": f"request {batch}-{i}: explain step by step how a B-tree splits a full node when "
            f"inserting key {i * 7919 + batch}, then compare with an LSM tree compaction strategy"
        }
        for i in range(ITEMS)
    ]


def test_sigterm_drains_in_flight_requests_then_exits_zero(tmp_path: Path) -> None:
    # A short drain delay: requests still arriving when the signal lands are served too (with
    # none, a connection the server has accepted but not yet read can be reset by the shutdown).
    settings = {
        "drain_delay_seconds": DELAY,
        "drain_timeout_seconds": 30,
        "inference_threads": 1,
        "embedding_cache_size": 0,
        "queue_depth_per_thread": 64,  # all batches wait their turn: this test is about drain, not shedding
        "max_queue_wait_ms": 30_000,
    }
    with ServeProcess(tmp_path, log_level="info", **settings) as server:
        results: dict[int, tuple[int, dict | str, float]] = {}

        def send(batch: int) -> None:
            try:
                response = httpx.post(f"{server.url}/route/batch", json=batch_body(batch), timeout=60)
                results[batch] = (response.status_code, response.json(), time.monotonic())
            except httpx.HTTPError as exc:  # a lost request: connection reset, cut response
                results[batch] = (0, repr(exc), time.monotonic())

        threads = [threading.Thread(target=send, args=(b,)) for b in range(BATCHES)]
        for thread in threads:
            thread.start()
        # wait until decisions are being made, i.e. the batches are inside the server
        deadline = time.monotonic() + 30
        while "routeiq_decisions_total{" not in httpx.get(f"{server.url}/metrics", timeout=5).text:
            assert time.monotonic() < deadline, "no decision started"
            time.sleep(0.02)
        signalled = time.monotonic()
        server.terminate()
        # readiness is false at once, while the process still serves
        ready = httpx.get(f"{server.url}/readyz", timeout=5)
        assert ready.status_code == 503 and ready.json() == {"status": "draining"}
        for thread in threads:
            thread.join(60)
        exit_code = server.wait(40)
        finished_after_signal = sum(1 for _, _, t in results.values() if t > signalled)
        finished_after_close = sum(1 for _, _, t in results.values() if t > signalled + DELAY)

        assert exit_code == 0, server.log()
        lost = {b: r for b, r in results.items() if r[0] != 200}
        assert not lost and len(results) == BATCHES, lost
        for _status, body, _ in results.values():
            assert isinstance(body, dict) and len(body["results"]) == ITEMS
            assert all("error" not in item for item in body["results"])
        # the drain was real: requests were still running when the signal arrived, and some
        # after the listener closed (the delay is over): uvicorn's drain let them finish
        assert finished_after_signal >= 1 and finished_after_close >= 1
        log = [json.loads(line) for line in server.log().splitlines() if line.strip()]
        messages = [entry["msg"] for entry in log]
        assert any(m.startswith("draining") for m in messages)
        assert messages.index(next(m for m in messages if m.startswith("draining"))) < len(messages) - 1
        print(
            f"\nSIGTERM drain: {BATCHES} batch requests ({BATCHES * ITEMS} decisions) in flight, "
            f"{finished_after_signal} finished after the signal ({finished_after_close} after the listener "
            f"closed), 0 lost, exit code {exit_code}"
        )


def test_readyz_turns_draining(tmp_path: Path) -> None:
    from routeiq.http.drain import mark_draining
    from tests.conftest import make_client

    with make_client() as client:
        assert client.get("/readyz").status_code == 200
        mark_draining(client.app)  # type: ignore[arg-type]
        response = client.get("/readyz")
        assert response.status_code == 503 and response.json() == {"status": "draining"}
        assert response.headers["x-request-id"]
        # a request that still reaches the process while it drains is served, not refused
        assert client.post("/route", json={"prompt": "hi"}).status_code == 200


def start_fails(tmp_path: Path, **settings: object) -> tuple[int, str, float]:
    start = time.monotonic()
    done = ServeProcess(tmp_path, log_level="info", **settings).run(timeout=60)
    return done.returncode, done.stderr.decode(errors="replace"), time.monotonic() - start


def test_tampered_artifact_stops_start_up_naming_the_file(tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(default_models_path(), models)
    (models / "centroids.json").write_bytes(
        (models / "centroids.json").read_bytes().replace(b"0.1", b"0.2", 1)
    )
    code, stderr, seconds = start_fails(tmp_path, models_path=models)
    assert code == 2, stderr
    assert f"{models / 'centroids.json'}" in stderr and "does not match its manifest" in stderr
    assert "Traceback" not in stderr
    print(f"\ntampered artifact: exit {code} after {seconds:.2f}s: {stderr.strip()[:160]}")


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ({"max_body_bytes": "lots"}, "ROUTEIQ_MAX_BODY_BYTES='lots'"),
        ({"strategy": "magic"}, "ROUTEIQ_STRATEGY='magic'"),
        ({"auth_tokens": "gw:short"}, "ROUTEIQ_AUTH_TOKENS"),
        ({"auth_tokens_file": "/nonexistent/tokens.yaml"}, "/nonexistent/tokens.yaml"),
        ({"models_path": "/nonexistent/models"}, "ROUTEIQ_MODELS_PATH='/nonexistent/models': no such folder"),
    ],
)
def test_bad_config_stops_start_up_clearly(tmp_path: Path, settings: dict, names: str) -> None:
    code, stderr, _ = start_fails(tmp_path, **settings)
    assert code == 2, stderr
    assert names in stderr and "Traceback" not in stderr
