"""`ml:<name>` end to end through POST /route with the shipped dcrouter routers, start-up
refusals, and the online premium budget."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from routeiq.errors import ArtifactError
from tests.conftest import make_client

REPO = Path(__file__).resolve().parents[2]
CATALOG = yaml.safe_load((REPO / "bench/data/dcrouter_catalog.yaml").read_text())["models"]
CANDIDATES = [
    {k: m[k] for k in ("deployment_id", "model", "tier", "input_cost_per_mtok", "output_cost_per_mtok")}
    for m in CATALOG
]
UNKNOWN = {
    "deployment_id": "mystery",
    "model": "acme/mystery-13b",
    "tier": "budget",
    "input_cost_per_mtok": 0.05,
    "output_cost_per_mtok": 0.05,
}
HARD = (
    "Q: There are 3 houses in a row. The person who owns horses lives directly left of the "
    "cellist, and the person who likes blue lives in the third house. Who owns the fish? Reason step by step."
)


@pytest.fixture(scope="module")
def ml_client() -> Iterator[TestClient]:
    with make_client(strategy="ml:dcrouter-mlp") as client:
        yield client


def route(client: TestClient, body: dict) -> dict:
    response = client.post("/route", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_ml_strategy_predicts_known_models_and_says_prior_for_the_rest(ml_client: TestClient) -> None:
    decision = route(ml_client, {"prompt": HARD, "candidates": [*CANDIDATES, UNKNOWN], "explain": True})
    assert decision["strategy"] == "ml:dcrouter-mlp"
    rows = {r["deployment_id"]: r for r in decision["candidates"]}
    assert rows["mystery"]["quality_source"] == "prior"
    assert {rows[c["deployment_id"]]["quality_source"] for c in CANDIDATES} == {"ml:dcrouter-mlp"}
    # Predictions differ per model (they are not one prior copied around).
    assert len({rows[c["deployment_id"]]["expected_quality"] for c in CANDIDATES}) > 3
    assert "ml_threshold:0.5" in decision["reason"]


def test_ml_strategy_picks_the_cheapest_candidate_over_the_threshold(ml_client: TestClient) -> None:
    for prompt in (HARD, "What is the capital of Italy?", "Write a limerick about a cat."):
        decision = route(ml_client, {"prompt": prompt, "candidates": CANDIDATES, "explain": True})
        rows = decision["candidates"]
        chosen = rows[0]
        qualified = [r for r in rows if r["expected_quality"] >= 0.5]
        if qualified:
            assert chosen["expected_quality"] >= 0.5
            assert chosen["est_cost_per_mtok"] == min(r["est_cost_per_mtok"] for r in qualified)
        else:
            assert chosen["expected_quality"] == max(r["expected_quality"] for r in rows)


def test_candidates_the_router_does_not_know_are_routed_by_priors(ml_client: TestClient) -> None:
    decision = route(ml_client, {"prompt": HARD, "explain": True})  # the service catalog
    # HARD is classified with confidence, so neither the heuristic nor the default path applies:
    # a trained router that knew none of the candidates reports the centroid estimator
    assert decision["strategy"] == "centroid"
    assert {r["quality_source"] for r in decision["candidates"]} == {"prior"}


def test_unknown_router_strategy_stops_start_up() -> None:
    with pytest.raises(ArtifactError, match="no such router"), make_client(strategy="ml:nope"):
        pass


def test_tampered_configured_router_stops_start_up(tmp_path: Path) -> None:
    for suffix in (".json", ".onnx"):
        shutil.copy(REPO / f"models/routers/dcrouter-linear{suffix}", tmp_path / f"dcrouter-linear{suffix}")
    graph = tmp_path / "dcrouter-linear.onnx"
    graph.write_bytes(graph.read_bytes()[:-1] + b"\x00")
    with (
        pytest.raises(ArtifactError, match="does not match its manifest"),
        make_client(strategy="ml:dcrouter-linear", routers_path=tmp_path),
    ):
        pass
    # Not configured: the service starts and simply does not offer it.
    with make_client(routers_path=tmp_path) as client:
        assert client.get("/readyz").status_code == 200


def test_premium_budget_keeps_premium_share_under_target(tmp_path: Path) -> None:
    # A demanding threshold: left alone, most of these prompts would go to a premium model.
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(yaml.safe_dump({"profiles": {"auto": {"ml_threshold": 0.9}}}))
    with make_client(strategy="ml:dcrouter-mlp", profiles_file=profiles) as client:
        unbudgeted = [route(client, {"prompt": f"{HARD} ({i})", "candidates": CANDIDATES}) for i in range(12)]
        premium = {c["deployment_id"] for c in CANDIDATES if c["tier"] == "premium"}
        assert sum(d["deployment_id"] in premium for d in unbudgeted) > 6
    with make_client(strategy="ml:dcrouter-mlp", profiles_file=profiles, premium_share_target=0.25) as client:
        tiers = []
        for i in range(12):
            decision = route(client, {"prompt": f"{HARD} ({i})", "candidates": CANDIDATES})
            tiers.append(
                next(c["tier"] for c in CANDIDATES if c["deployment_id"] == decision["deployment_id"])
            )
            if "premium_budget" in decision["reason"]:
                assert tiers[-1] == "budget"
        assert tiers.count("premium") <= 0.25 * len(tiers)
        metrics = client.get("/metrics").text
        assert "routeiq_premium_share_ratio" in metrics
        downgrades = [
            line
            for line in metrics.splitlines()
            if line.startswith("routeiq_premium_budget_downgrades_total")
        ]
        assert downgrades and float(downgrades[0].split()[-1]) > 0
