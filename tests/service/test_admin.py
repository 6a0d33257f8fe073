"""Admin API, experiments, circuit breakers and recent decisions, in process (in-memory state)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from routeiq.decision.experiments import MAX_WEIGHT_CHANGES
from tests.conftest import make_client

KEY = "test-admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {KEY}"}
CODE = "Write a Python function that merges two sorted lists"
TWO = [
    {"deployment_id": "strong", "model": "x/strong", "tier": "premium", "quality": 0.95},
    {"deployment_id": "weak", "model": "x/weak", "tier": "budget", "quality": 0.6},
]


@pytest.fixture(scope="module")
def admin() -> Iterator[TestClient]:
    with make_client(admin_key=KEY) as c:
        yield c


def route(client: TestClient, body: dict, **headers: str) -> dict:
    response = client.post("/route", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_admin_key_missing_wrong_disabled(admin: TestClient) -> None:
    missing = admin.get("/admin/config")
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "unauthorized"
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="routeiq"' and missing.headers["X-Request-ID"]
    wrong = admin.get("/admin/config", headers={"Authorization": "Bearer not-the-key"})
    assert wrong.status_code == 403 and wrong.json()["error"]["type"] == "forbidden"
    assert admin.get("/admin/config", headers={"Authorization": f"Basic {KEY}"}).status_code == 401
    assert admin.get("/admin/config", headers={"X-RouteIQ-Admin-Key": KEY}).status_code == 200
    assert admin.get("/admin/config", headers=ADMIN).status_code == 200
    with make_client() as off:  # no ROUTEIQ_ADMIN_KEY: the admin API is off
        response = off.get("/admin/config", headers=ADMIN)
        assert response.status_code == 403 and "ROUTEIQ_ADMIN_KEY" in response.json()["error"]["message"]


def test_set_default_profile_and_strategy() -> None:
    with make_client(admin_key=KEY) as client:
        assert route(client, {"prompt": "hello there"})["profile"] == "auto"
        bad = client.put("/admin/config", json={"strategy": "ml:nope"}, headers=ADMIN)
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "strategy"
        bad = client.put("/admin/config", json={"default_profile": "nope"}, headers=ADMIN)
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "default_profile"
        assert client.put("/admin/config", json={}, headers=ADMIN).status_code == 422
        assert client.put("/admin/config", json={"colour": "red"}, headers=ADMIN).status_code == 422
        done = client.put(
            "/admin/config", json={"default_profile": "ECO", "strategy": "centroid"}, headers=ADMIN
        )
        assert done.status_code == 200, done.text
        assert done.json()["default_profile"] == "eco" and done.json()["version"] == 1
        assert route(client, {"prompt": "hello there"})["profile"] == "eco"
        assert route(client, {"prompt": "hello there", "profile": "premium"})["profile"] == "premium"


def test_experiment_between_profiles_sticky_counted_and_read_out() -> None:
    with make_client(admin_key=KEY) as client:
        spec = {
            "name": "eco-vs-auto",
            "variants": [{"name": "auto", "weight": 1}, {"name": "eco", "weight": 1, "profile": "eco"}],
            "assign_by": ["session"],
        }
        created = client.post("/admin/experiments", json=spec, headers=ADMIN)
        assert created.status_code == 201, created.text
        assert client.post("/admin/experiments", json=spec, headers=ADMIN).status_code == 422  # exists
        seen: dict[str, str] = {}
        for i in range(40):
            session = f"s{i % 10}"
            d = route(client, {"prompt": f"hi {i}"}, **{"X-RouteIQ-Session": session})
            assert d["experiment"] == "eco-vs-auto" and f"exp:eco-vs-auto={d['variant']}" in d["reason"]
            assert seen.setdefault(session, d["variant"]) == d["variant"]  # sticky
            assert d["profile"] == ("eco" if d["variant"] == "eco" else "auto")
        assert set(seen.values()) == {"auto", "eco"}
        # No session: assign_by=[session] only, so the request stays out of the experiment.
        assert "experiment" not in route(client, {"prompt": "hi"})
        d = route(client, {"prompt": "hi"}, **{"X-RouteIQ-Session": "s1"})
        client.post(
            "/feedback",
            json={
                "outcomes": [
                    {
                        "deployment_id": d["deployment_id"],
                        "success": True,
                        "latency_ms": 120,
                        "quality": 0.8,
                        "experiment": "eco-vs-auto",
                        "variant": d["variant"],
                    },
                    {
                        "deployment_id": d["deployment_id"],
                        "success": False,
                        "latency_ms": 80,
                        "experiment": "eco-vs-auto",
                        "variant": d["variant"],
                    },
                ]
            },
        )
        out = client.get("/admin/experiments/eco-vs-auto", headers=ADMIN).json()
        assert out["decisions"] == 41
        rows = {v["variant"]: v for v in out["variants"]}
        assert sum(r["decisions"] for r in rows.values()) == 41
        mine = rows[d["variant"]]
        assert (mine["success_rate"], mine["mean_latency_ms"], mine["mean_quality"]) == (0.5, 100.0, 0.8)
        stopped = client.post("/admin/experiments/eco-vs-auto/stop", headers=ADMIN)
        assert stopped.json()["experiment"]["status"] == "stopped"
        assert "experiment" not in route(client, {"prompt": "hi"}, **{"X-RouteIQ-Session": "s1"})
        assert client.get("/admin/experiments/none", headers=ADMIN).status_code == 404
        listed = client.get("/admin/experiments", headers=ADMIN).json()["experiments"]
        assert [e["status"] for e in listed] == ["stopped"]


def test_experiment_with_a_strategy_not_loaded_falls_back_to_centroid_and_says_so() -> None:
    with make_client(admin_key=KEY) as client:
        spec = {
            "name": "ml-trial",
            "variants": [
                {"name": "c", "weight": 1, "strategy": "centroid"},
                {"name": "m", "weight": 1, "strategy": "ml:knn"},
            ],
        }
        created = client.post("/admin/experiments", json=spec, headers=ADMIN).json()
        assert created["warnings"] and "ml:knn" in created["warnings"][0]
        variants = set()
        for _ in range(30):  # assigned by request id: spread over both
            d = route(client, {"prompt": CODE})
            variants.add(d["variant"])
            assert d["strategy"] == "centroid"
            if d["variant"] == "m":
                assert "strategy_missing:ml:knn->centroid" in d["reason"]
        assert variants == {"c", "m"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "name": "bad name!",
                "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1, "profile": "eco"}],
            },
            "name",
        ),
        ({"name": "x", "variants": [{"name": "a", "weight": 1}]}, "variants"),
        ({"name": "x", "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]}, "variants"),
        (
            {
                "name": "x",
                "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1, "profile": "gold"}],
            },
            "variants.b",
        ),
        (
            {
                "name": "x",
                "variants": [{"name": "a", "weight": 0}, {"name": "b", "weight": 1, "profile": "eco"}],
            },
            "variants.0.weight",
        ),
        (
            {
                "name": "x",
                "variants": [{"name": "a", "weight": 1, "strategy": "magic"}, {"name": "b", "weight": 1}],
            },
            "variants.0.strategy",
        ),
        (  # finding 9: was a 500
            {
                "name": "x",
                "variants": [{"name": "a", "weight": 1}, {"name": "a", "weight": 1, "profile": "eco"}],
            },
            "variants",
        ),
    ],
)
def test_experiment_validation(admin: TestClient, body: dict, field: str) -> None:
    response = admin.post("/admin/experiments", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


def test_feedback_opens_a_breaker_and_the_decision_says_so() -> None:
    with make_client(admin_key=KEY, breaker_min_requests=3, breaker_open_seconds=60) as client:
        before = route(client, {"prompt": CODE, "candidates": TWO})
        assert before["deployment_id"] == "strong"
        failures = [{"deployment_id": "strong", "success": False, "error_class": "timeout"}] * 3
        assert client.post("/feedback", json={"outcomes": failures}).json() == {"accepted": 3}
        after = route(client, {"prompt": CODE, "candidates": TWO, "explain": True})
        assert after["deployment_id"] == "weak" and after["fallbacks"] == ["strong"]
        assert "circuit_open:strong" in after["reason"]
        rows = {r["deployment_id"]: r for r in after["candidates"]}
        assert rows["strong"]["demoted"] == ["circuit_open"]
        # Never an empty answer: with only the open one left, it is still chosen, and said so.
        only = route(client, {"prompt": CODE, "candidates": TWO[:1]})
        assert only["deployment_id"] == "strong" and "best_available:circuit_open" in only["reason"]
        breakers = client.get("/admin/breakers", headers=ADMIN).json()["breakers"]
        assert breakers["strong"]["state"] == "open"
        assert client.post("/admin/breakers/strong/reset", headers=ADMIN).json()["reset"] is True
        assert route(client, {"prompt": CODE, "candidates": TWO})["deployment_id"] == "strong"


def test_half_open_breaker_sends_one_probe_then_closes_on_success() -> None:
    settings = {"breaker_min_requests": 2, "breaker_open_seconds": 0.2, "breaker_half_open_probes": 1}
    with make_client(admin_key=KEY, **settings) as client:
        assert route(client, {"prompt": CODE, "candidates": TWO})["deployment_id"] == "strong"
        client.post("/feedback", json={"outcomes": [{"deployment_id": "strong", "success": False}] * 2})
        assert route(client, {"prompt": CODE, "candidates": TWO})["deployment_id"] == "weak"
        time.sleep(0.25)
        probe = route(client, {"prompt": CODE, "candidates": TWO})
        assert probe["deployment_id"] == "strong" and "circuit_probe:strong" in probe["reason"]
        assert route(client, {"prompt": CODE, "candidates": TWO})["deployment_id"] == "weak"  # slot taken
        client.post("/feedback", json={"outcomes": [{"deployment_id": "strong", "success": True}]})
        closed = route(client, {"prompt": CODE, "candidates": TWO})
        assert closed["deployment_id"] == "strong" and "circuit" not in closed["reason"]


def test_recent_decisions_with_filters() -> None:
    with make_client(admin_key=KEY, recent_decisions_size=5) as client:
        for profile in ["eco", "auto", "eco", "premium", "eco", "auto", "eco"]:
            route(client, {"prompt": "hello", "profile": profile})
        out = client.get("/admin/decisions", headers=ADMIN).json()
        assert out["buffered"] == 5 and out["worker_pid"] > 0
        assert [d["profile"] for d in out["decisions"]] == [
            "eco",
            "auto",
            "eco",
            "premium",
            "eco",
        ]  # newest first
        eco = client.get("/admin/decisions", params={"profile": "eco", "limit": 2}, headers=ADMIN).json()
        assert [d["profile"] for d in eco["decisions"]] == ["eco", "eco"]
        assert client.get("/admin/decisions", params={"limit": 0}, headers=ADMIN).status_code == 422


def test_reload_catalog_without_restart(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    entry = "  - {deployment_id: %s, model: x/%s, tier: mid, quality: 0.8}\n"
    catalog.write_text("version: 1\nmodels:\n" + entry % ("one", "one"))
    with make_client(admin_key=KEY, catalog_file=str(catalog)) as client:
        ids = {m["deployment_id"] for m in client.get("/v1/catalog").json()["models"]}
        assert "one" in ids and "two" not in ids
        catalog.write_text("version: 1\nmodels:\n" + entry % ("one", "one") + entry % ("two", "two"))
        reloaded = client.post("/admin/reload", headers=ADMIN)
        assert reloaded.status_code == 200, reloaded.text
        assert {"catalog", "profiles", "prototypes"} <= set(reloaded.json()["reloaded"])
        assert "two" in {m["deployment_id"] for m in client.get("/v1/catalog").json()["models"]}
        assert route(client, {"prompt": "hi", "model": "x/two"})["deployment_id"] == "two"
        catalog.write_text("models: [oops")
        broken = client.post("/admin/reload", headers=ADMIN)
        assert broken.status_code == 422 and broken.json()["error"]["type"] == "invalid_request"
        assert "two" in {m["deployment_id"] for m in client.get("/v1/catalog").json()["models"]}  # unchanged


def test_redis_unreachable_routing_goes_on_and_readiness_is_degraded(tmp_path: Path) -> None:
    url = f"unix://{tmp_path}/absent.sock"
    with make_client(redis_url=url, admin_key=KEY) as client:
        d = route(client, {"prompt": "hello"}, **{"X-RouteIQ-Session": "abc"})
        assert route(client, {"prompt": "more"}, **{"X-RouteIQ-Session": "abc"})["strategy"] == "session"
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert ready.json()["state"] == "redis"
        metrics = client.get("/metrics").text
        assert (
            "routeiq_state_degraded 1.0" in metrics
            and 'routeiq_state_fallbacks_total{op="get_session"}' in metrics
        )
        change = client.put("/admin/config", json={"default_profile": "eco"}, headers=ADMIN)
        assert change.status_code == 503 and change.json()["error"]["type"] == "state_unavailable"
        assert d["deployment_id"]


def test_a_stopped_experiment_is_deleted_through_the_admin_api() -> None:
    spec = {
        "name": "prune-me",
        "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1, "profile": "eco"}],
    }
    with make_client(admin_key=KEY) as client:
        assert client.post("/admin/experiments", json=spec, headers=ADMIN).status_code == 201
        assert client.delete("/admin/experiments/prune-me", headers=ADMIN).status_code == 422
        assert client.post("/admin/experiments/prune-me/stop", headers=ADMIN).status_code == 200
        assert client.delete("/admin/experiments/prune-me", headers=ADMIN).json() == {"deleted": "prune-me"}
        assert client.get("/admin/experiments", headers=ADMIN).json()["experiments"] == []
        assert client.delete("/admin/experiments/prune-me", headers=ADMIN).status_code == 404


def batch_variants(client: TestClient, users: range) -> dict[str, str]:
    """Each user's variant, through /route/batch (the same prompt: one embedding, cached)."""
    out: dict[str, str] = {}
    for start in range(users.start, users.stop, 50):
        ids = range(start, min(start + 50, users.stop))
        body = [{"prompt": "hello there", "user": f"u{i}"} for i in ids]
        response = client.post("/route/batch", json=body)
        assert response.status_code == 200, response.text
        out.update({f"u{i}": r["variant"] for i, r in zip(ids, response.json()["results"], strict=True)})
    return out


def test_a_running_experiment_is_ramped_in_place_counters_kept_users_moved_one_way(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with make_client(admin_key=KEY) as client:
        spec = {
            "name": "ramp",
            "variants": [
                {"name": "control", "weight": 90},
                {"name": "treatment", "weight": 10, "profile": "eco"},
            ],
            "assign_by": ["user"],
        }
        assert client.post("/admin/experiments", json=spec, headers=ADMIN).status_code == 201
        users = range(1000)
        before = batch_variants(client, users)
        version = client.get("/admin/config", headers=ADMIN).json()["version"]
        with caplog.at_level("INFO", logger="routeiq.audit"):
            ramped = client.patch(
                "/admin/experiments/ramp", json={"weights": {"control": 80, "treatment": 20}}, headers=ADMIN
            )
        assert ramped.status_code == 200, ramped.text
        body = ramped.json()["experiment"]
        assert {v["name"]: v["weight"] for v in body["variants"]} == {"control": 80, "treatment": 20}
        assert body["status"] == "running" and len(body["weight_changes"]) == 1
        assert client.get("/admin/config", headers=ADMIN).json()["version"] == version + 1
        audit = [r for r in caplog.records if r.name == "routeiq.audit"]
        assert [r.fields["action"] for r in audit] == ["experiment_ramp"]  # type: ignore[attr-defined]
        assert audit[0].fields["weights"] == [  # type: ignore[attr-defined]
            {"control": 90, "treatment": 10},
            {"control": 80, "treatment": 20},
        ]

        after = batch_variants(client, users)
        moved = {(before[u], after[u]) for u in before if before[u] != after[u]}
        to_treatment = sum(1 for u in before if (before[u], after[u]) == ("control", "treatment"))
        assert moved == {("control", "treatment")}  # nobody went back to control
        assert 60 <= to_treatment <= 140, to_treatment  # ~10% of 1000
        share = sum(v == "treatment" for v in after.values()) / len(after)
        assert 0.16 <= share <= 0.24, share

        out = client.get("/admin/experiments/ramp", headers=ADMIN).json()
        assert out["decisions"] == 2000  # counters kept across the ramp
        assert {v["variant"]: v["target_share"] for v in out["variants"]} == {
            "control": 0.8,
            "treatment": 0.2,
        }
        phases = out["phases"]
        assert [p["weights"] for p in phases] == [
            {"control": 90, "treatment": 10},
            {"control": 80, "treatment": 20},
        ]
        assert phases[0]["started_at"] == out["experiment"]["created_at"]
        assert phases[0]["ended_at"] == phases[1]["started_at"] == body["weight_changes"][0]["at"]
        assert phases[1]["ended_at"] is None
        # Each phase counts its own decisions and outcomes beside the totals.
        assert [p["decisions"] for p in phases] == [len(before), len(after)]
        for phase, seen in zip(phases, (before, after), strict=True):
            by_variant = {v["variant"]: v["decisions"] for v in phase["variants"]}
            assert by_variant == {
                n: sum(1 for x in seen.values() if x == n) for n in ("control", "treatment")
            }
        assert [v["target_share"] for v in phases[0]["variants"]] == [0.9, 0.1]
        reported = {
            "deployment_id": "deepseek-chat",
            "success": True,
            "experiment": "ramp",
            "variant": "treatment",
        }
        assert client.post("/feedback", json={"outcomes": [reported]}).status_code == 200
        now = client.get("/admin/experiments/ramp", headers=ADMIN).json()["phases"]
        assert [[v["outcomes"] for v in p["variants"]] for p in now] == [[0, 0], [0, 1]]

        # Ramped to nothing: the variant keeps its readout and takes no traffic.
        off = client.patch(
            "/admin/experiments/ramp", json={"weights": {"control": 1, "treatment": 0}}, headers=ADMIN
        )
        assert off.status_code == 200, off.text
        assert set(batch_variants(client, range(200)).values()) == {"control"}


def test_an_outcome_counts_in_the_ramp_phase_its_decision_names() -> None:
    with make_client(admin_key=KEY) as client:
        spec = {
            "name": "echo",
            "variants": [
                {"name": "control", "weight": 1, "strategy": "centroid"},
                {"name": "treatment", "weight": 1, "profile": "eco"},
            ],
            "assign_by": ["request"],
        }
        assert client.post("/admin/experiments", json=spec, headers=ADMIN).status_code == 201
        first = client.post("/route", json={"prompt": "hello there"}).json()
        assert first["experiment"] == "echo" and first["experiment_phase"] == 0
        ramp = {"weights": {"control": 1, "treatment": 3}}
        assert client.patch("/admin/experiments/echo", json=ramp, headers=ADMIN).status_code == 200
        second = client.post("/route", json={"prompt": "hello there"}).json()
        assert second["experiment_phase"] == 1

        def outcome(decision: dict, **extra: object) -> dict:
            keys = ("deployment_id", "experiment", "variant")
            return {"success": True, **{k: decision[k] for k in keys}, **extra}

        outcomes = [
            outcome(first, experiment_phase=0),  # decided before the ramp, reported after it
            outcome(first),  # no phase echoed: the phase it arrives in
            outcome(first, experiment_phase=7),  # a phase not reached yet: not believed
        ]
        assert client.post("/feedback", json={"outcomes": outcomes}).status_code == 200
        phases = client.get("/admin/experiments/echo", headers=ADMIN).json()["phases"]
        assert [p["decisions"] for p in phases] == [1, 1]
        assert [sum(v["outcomes"] for v in p["variants"]) for p in phases] == [1, 2]
        bad = client.post("/feedback", json={"outcomes": [outcome(first, experiment_phase=-1)]})
        assert bad.status_code == 422 and "experiment_phase" in bad.text


@pytest.mark.parametrize(
    ("weights", "field"),
    [
        ({"control": 1}, "weights"),  # treatment not named
        ({"control": 1, "treatment": 1, "other": 1}, "weights"),  # unknown variant
        ({"control": -1, "treatment": 1}, "weights.control"),
        ({"control": 0, "treatment": 0}, "weights"),
        ({"control": "lots", "treatment": 1}, "weights.control"),
    ],
)
def test_ramp_validation(admin: TestClient, weights: dict, field: str) -> None:
    spec = {
        "name": "ramp-checks",
        "variants": [{"name": "control", "weight": 1}, {"name": "treatment", "weight": 1, "profile": "eco"}],
    }
    admin.post("/admin/experiments", json=spec, headers=ADMIN)  # 422 once it exists: fine
    response = admin.patch("/admin/experiments/ramp-checks", json={"weights": weights}, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    unchanged = admin.get("/admin/experiments/ramp-checks", headers=ADMIN).json()["experiment"]
    assert unchanged["weight_changes"] == []


def test_ramp_of_an_unknown_or_stopped_experiment(admin: TestClient) -> None:
    body = {"weights": {"control": 1, "treatment": 1}}
    missing = admin.patch("/admin/experiments/nope", json=body, headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    spec = {
        "name": "ramp-stopped",
        "variants": [{"name": "control", "weight": 1}, {"name": "treatment", "weight": 1, "profile": "eco"}],
    }
    assert admin.post("/admin/experiments", json=spec, headers=ADMIN).status_code == 201
    assert admin.post("/admin/experiments/ramp-stopped/stop", headers=ADMIN).status_code == 200
    stopped = admin.patch("/admin/experiments/ramp-stopped", json=body, headers=ADMIN)
    assert stopped.status_code == 409, stopped.text
    error = stopped.json()["error"]
    assert error["type"] == "conflict" and "stopped" in error["message"]
    assert admin.patch("/admin/experiments/nope", json={}, headers=ADMIN).status_code == 422


def test_ramps_are_bounded_and_a_ramp_to_the_same_weights_records_nothing(admin: TestClient) -> None:
    # Every ramp is kept in the definition (and replayed to place users), so their number is capped.
    spec = {
        "name": "ramp-many",
        "variants": [{"name": "control", "weight": 1}, {"name": "treatment", "weight": 1, "profile": "eco"}],
    }
    assert admin.post("/admin/experiments", json=spec, headers=ADMIN).status_code == 201
    same = admin.patch(
        "/admin/experiments/ramp-many", json={"weights": {"control": 1, "treatment": 1}}, headers=ADMIN
    )
    assert same.status_code == 200 and same.json()["experiment"]["weight_changes"] == []
    for i in range(MAX_WEIGHT_CHANGES):
        weights = {"control": 2 - i % 2, "treatment": 1}  # 2, 1, 2, ...: each one a change
        assert (
            admin.patch("/admin/experiments/ramp-many", json={"weights": weights}, headers=ADMIN).status_code
            == 200
        )
    over = admin.patch(
        "/admin/experiments/ramp-many", json={"weights": {"control": 5, "treatment": 1}}, headers=ADMIN
    )
    assert over.status_code == 409, over.text
    assert "start a new experiment" in over.json()["error"]["message"]
    kept = admin.get("/admin/experiments/ramp-many", headers=ADMIN).json()
    assert len(kept["experiment"]["weight_changes"]) == MAX_WEIGHT_CHANGES
