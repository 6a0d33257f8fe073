"""Learning from production, end to end on a real `routeiq serve`: decisions over HTTP, their
outcomes through /feedback, and the joined rows on disk — vectors, never the prompt text."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np

from routeiq.observability.training_rows import decode_vector
from tests._harness.net import wait_until
from tests._harness.rows import written_rows
from tests._harness.service import ServeProcess
from tests.conftest import make_client

PROMPTS = [
    "Write a Python function that merges two sorted lists zebrafinch",
    "Translate 'good morning' into French zebrafinch",
    "Prove that the square root of two is irrational zebrafinch",
    "Summarise the plot of Hamlet in two sentences zebrafinch",
]
MARK = "zebrafinch"  # in every prompt: must appear in no row


def _rows(folder: Path) -> list[dict[str, object]]:
    return written_rows(folder)


def test_route_and_feedback_leave_rows_with_embeddings_and_no_prompt_text(tmp_path: Path) -> None:
    rows_dir = tmp_path / "rows"
    with (
        ServeProcess(tmp_path / "serve", training_rows_dir=rows_dir) as server,
        httpx.Client(base_url=server.url, trust_env=False, timeout=10) as http,
    ):
        decisions = []
        for prompt in PROMPTS:
            answer = http.post("/route", json={"prompt": prompt})
            assert answer.status_code == 200, answer.text
            decisions.append(answer.json())
        outcomes = [
            {
                "deployment_id": d["deployment_id"],
                "request_id": d["request_id"],
                "success": i % 2 == 0,
                "quality": 0.25 * i,
                "latency_ms": 100 + i,
            }
            for i, d in enumerate(decisions)
        ]
        # The first decision's first fallback was served too: a row of its own.
        outcomes.append(
            {
                "deployment_id": decisions[0]["fallbacks"][0],
                "request_id": decisions[0]["request_id"],
                "success": True,
            }
        )
        # Repeated, and for a request nobody decided: accepted as outcomes, no rows.
        outcomes.append(dict(outcomes[0]))
        outcomes.append(
            {"deployment_id": decisions[0]["deployment_id"], "request_id": "nobody", "success": True}
        )
        answer = http.post("/feedback", json={"outcomes": outcomes})
        assert answer.status_code == 200, answer.text
        wait_until(lambda: len(_rows(rows_dir)) >= 5, 10, "training rows on disk")
        metrics = http.get("/metrics").text
    rows = _rows(rows_dir)
    assert len(rows) == 5
    files = list(rows_dir.glob("*.jsonl"))
    assert len(files) == 1 and files[0].name.startswith("rows-") and files[0].name.endswith(".jsonl")
    assert MARK not in files[0].read_text()
    by_request = {(r["request_id"], r["deployment_id"]): r for r in rows}
    for i, d in enumerate(decisions):
        row = by_request[(d["request_id"], d["deployment_id"])]
        assert row["model"] == d["model"] and row["chosen"] == d["deployment_id"]
        assert row["category"] == d["category"] and row["tier"] == d["tier"]
        assert row["success"] is (i % 2 == 0) and row["quality"] == 0.25 * i and row["latency_ms"] == 100 + i
        assert "prompt" not in row
        vector = decode_vector(str(row["embedding"]))
        assert vector.shape == (row["dimension"],) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-3
        assert [c["deployment_id"] for c in row["candidates"]] == [d["deployment_id"], *d["fallbacks"]][:6]  # type: ignore[union-attr]
    fallback = by_request[(decisions[0]["request_id"], decisions[0]["fallbacks"][0])]
    assert fallback["chosen"] == decisions[0]["deployment_id"]
    assert 'routeiq_training_rows_total{result="written"} 5.0' in metrics
    assert 'routeiq_training_rows_total{result="unmatched"} 2.0' in metrics


def test_nothing_is_kept_or_written_unless_enabled() -> None:
    with make_client() as client:
        decision = client.post("/route", json={"prompt": PROMPTS[0]}).json()
        outcome = {
            "deployment_id": decision["deployment_id"],
            "request_id": decision["request_id"],
            "success": True,
        }
        assert client.post("/feedback", json={"outcomes": [outcome]}).status_code == 200
        assert client.app.state.engine.training_rows is None  # type: ignore[attr-defined]
        assert 'routeiq_training_rows_total{result="queued"} 0.0' in client.get("/metrics").text


def test_each_worker_writes_its_own_file(tmp_path: Path) -> None:
    """Two workers: each joins the outcomes of the decisions it made (a connection stays with
    one worker) into its own rows-<host>-<pid>.jsonl."""
    rows_dir = tmp_path / "rows"
    pairs = 0
    with ServeProcess(tmp_path / "serve", workers=2, training_rows_dir=rows_dir) as server:
        # A fresh connection per decision and its outcome, until both workers have written: which
        # worker accepts a connection is the kernel's choice.
        while pairs < 200 and len(list(rows_dir.glob("*.jsonl"))) < 2:
            with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as client:
                decision = client.post("/route", json={"prompt": f"{PROMPTS[pairs % 4]} {pairs}"}).json()
                outcome = {
                    "deployment_id": decision["deployment_id"],
                    "request_id": decision["request_id"],
                    "success": True,
                }
                assert client.post("/feedback", json={"outcomes": [outcome]}).status_code == 200
            pairs += 1
            wait_until(lambda n=pairs: len(_rows(rows_dir)) >= n, 10, "the row of this outcome")
    files = sorted(p.name for p in rows_dir.glob("*.jsonl"))
    assert len(files) == 2, files
    assert len({name.rsplit("-", 1)[1] for name in files}) == 2  # two pids
    assert len(_rows(rows_dir)) == pairs  # every outcome found its decision on its worker


def test_one_tenant_cannot_join_another_tenants_decision(tmp_path: Path) -> None:
    alice, bob = "alice-token-0123456789abcdef", "bob-token-0123456789abcdef00"
    with make_client(auth_tokens=f"alice:{alice},bob:{bob}", training_rows_dir=tmp_path) as client:
        as_alice = {"Authorization": f"Bearer {alice}"}
        decision = client.post("/route", json={"prompt": PROMPTS[0]}, headers=as_alice).json()
        outcome = {
            "deployment_id": decision["deployment_id"],
            "request_id": decision["request_id"],
            "success": False,
        }
        # Bob knows Alice's request id: his outcome counts as his, and makes no row of her decision.
        answer = client.post(
            "/feedback", json={"outcomes": [outcome]}, headers={"Authorization": f"Bearer {bob}"}
        )
        assert answer.status_code == 200
        assert client.post("/feedback", json={"outcomes": [outcome]}, headers=as_alice).status_code == 200
        wait_until(lambda: len(_rows(tmp_path)) >= 1, 10, "alice's row")
        metrics = client.get("/metrics").text
    rows = _rows(tmp_path)
    assert [(r["tenant"], r["request_id"]) for r in rows] == [("alice", decision["request_id"])]
    assert 'routeiq_training_rows_total{result="unmatched"} 1.0' in metrics


def test_the_prompt_is_stored_only_when_the_operator_opts_in(tmp_path: Path) -> None:
    with make_client(training_rows_dir=tmp_path, training_rows_include_prompt=True) as client:
        decision = client.post("/route", json={"prompt": PROMPTS[1]}).json()
        outcome = {
            "deployment_id": decision["deployment_id"],
            "request_id": decision["request_id"],
            "success": True,
        }
        assert client.post("/feedback", json={"outcomes": [outcome]}).status_code == 200
        wait_until(lambda: len(_rows(tmp_path)) >= 1, 10, "the row")
    (row,) = _rows(tmp_path)
    assert row["prompt"] == PROMPTS[1]
