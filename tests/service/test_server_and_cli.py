"""A real `routeiq serve` on 127.0.0.1, the CLI, and user prototypes rebuilt at start-up."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._harness import ServeProcess, clean_env
from tests.conftest import make_client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with ServeProcess(tmp_path_factory.mktemp("serve")) as process:
        yield process.url


def test_real_server_answers_route_and_errors(server: str) -> None:
    decision = httpx.post(
        f"{server}/route", json={"prompt": "Write a Python function that merges two sorted lists"}
    )
    assert decision.status_code == 200 and decision.json()["category"] == "code_generation"
    assert decision.headers["x-request-id"] == decision.json()["request_id"]
    bad = httpx.post(f"{server}/route", content=b"not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "bad_request"
    assert "routeiq_decisions_total" in httpx.get(f"{server}/metrics").text


def test_cli_route_prints_a_decision() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "routeiq.cli", "route", "hi, how are you?", "--profile", "eco", "--explain"],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    )
    decision = json.loads(out.stdout)
    assert decision["profile"] == "eco" and decision["category"] == "conversation"
    assert decision["candidates"] and decision["signals"]["language"] == "en"
    failed = subprocess.run(
        [sys.executable, "-m", "routeiq.cli", "route", "hi", "--profile", "nope"],
        check=False,
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert failed.returncode == 2 and "unknown profile 'nope'" in failed.stderr


def test_centroids_build_writes_bound_json(tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text("categories:\n  legal: ['Draft an NDA clause', 'Review this lease for risks']\n")
    out = tmp_path / "centroids.json"
    subprocess.run(
        [sys.executable, "-m", "routeiq.cli", "centroids", "build", "--extra", str(extra), "--out", str(out)],
        check=True,
        capture_output=True,
        env=clean_env(),
    )
    data = json.loads(out.read_text())
    manifest = json.loads((Path(__file__).parents[2] / "models/embedder/manifest.json").read_text())
    assert data["embedder_sha256"] == manifest["files"]["model.onnx"]["sha256"]
    assert data["categories"]["legal"]["count"] == 2 and len(data["categories"]["legal"]["vector"]) == 384
    assert set(data["tiers"]) == {"trivial", "simple", "moderate", "complex", "expert"}


def test_user_prototypes_add_a_category_at_start_up(tmp_path: Path) -> None:
    extra = tmp_path / "legal.yaml"
    prompts = [
        "Draft a mutual NDA clause about confidential information",
        "Review this commercial lease for liability risks",
        "Is this non-compete clause enforceable in California?",
        "Write an indemnification clause for a SaaS contract",
        "Explain the termination for convenience clause in this agreement",
    ]
    extra.write_text("categories:\n  legal:\n" + "".join(f"    - {json.dumps(p)}\n" for p in prompts))
    with make_client(prototypes_file=extra) as client:
        decision = client.post(
            "/route",
            json={"prompt": "Please draft an NDA confidentiality clause for our contractor agreement"},
        ).json()
        assert decision["category"] == "legal"
