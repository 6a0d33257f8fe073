"""The dashboard's endpoints and assets, and /docs served with local assets only."""

from __future__ import annotations

import logging
import re

import pytest

from tests.conftest import make_client

KEY = "test-admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {KEY}"}
TWO = [
    {
        "deployment_id": "strong",
        "model": "x/strong",
        "tier": "premium",
        "quality": 0.95,
        "input_cost_per_mtok": 10.0,
        "output_cost_per_mtok": 30.0,
    },
    {
        "deployment_id": "weak",
        "model": "x/weak",
        "tier": "budget",
        "quality": 0.6,
        "input_cost_per_mtok": 0.1,
        "output_cost_per_mtok": 0.3,
    },
]


def test_docs_and_redoc_reference_only_local_assets() -> None:
    with make_client() as client:
        for page in ("/docs", "/redoc"):
            html = client.get(page).text
            urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?'([^']+)'""", html)
            flat = [u for pair in urls for u in pair if u]
            assert flat, page
            assert all(u.startswith("/") for u in flat), (page, flat)
            assert "cdn" not in html.lower() and "fonts.googleapis" not in html
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
            response = client.get(f"/docs/assets/{asset}")
            assert response.status_code == 200 and len(response.content) > 100_000, asset


def test_ui_is_refused_without_an_admin_key_and_served_with_one() -> None:
    with make_client() as client:
        refused = client.get("/ui/")
        assert refused.status_code == 403 and "ROUTEIQ_ADMIN_KEY" in refused.json()["error"]["message"]
    with make_client(admin_key=KEY) as client:
        page = client.get("/ui/")
        assert page.status_code == 200 and "app.js" in page.text
        assert client.get("/ui/app.js").status_code == 200
        assert client.get("/ui", follow_redirects=False).status_code == 308
        assert client.get("/admin/overview").status_code == 401


def test_overview_carries_counts_money_and_config() -> None:
    with make_client(admin_key=KEY) as client:
        for _ in range(3):
            body = {"prompt": "hello there, how are you", "candidates": TWO, "profile": "eco"}
            assert client.post("/route", json=body).status_code == 200
        data = client.get("/admin/overview", headers=ADMIN).json()
    metrics = data["metrics"]
    assert sum(s["value"] for s in metrics["decisions"]) == 3
    assert metrics["stages"]["total"]["count"] == 3
    assert metrics["stages"]["total"]["buckets"][-1] == [None, 3.0]
    spent = sum(s["value"] for s in metrics["spend"])
    assert 0 < spent < metrics["premium_spend"]  # the budget model was chosen, premium costs more
    assert data["config"]["strategy"] and data["config"]["strategies"]
    assert metrics["state_degraded"] == 0


def test_a_recent_decision_explains_itself_on_demand() -> None:
    with make_client(admin_key=KEY) as client:
        response = client.post("/route", json={"prompt": "Write a haiku about autumn", "candidates": TWO})
        request_id = response.json()["request_id"]
        assert response.json().get("candidates") is None  # no explain asked: none built
        listed = client.get("/admin/decisions", headers=ADMIN).json()["decisions"][0]
        assert listed["request_id"] == request_id and listed["explainable"] is True
        found = client.get(f"/admin/decisions/{request_id}/explain", headers=ADMIN).json()
        missing = client.get("/admin/decisions/nope/explain", headers=ADMIN)
    assert {c["deployment_id"] for c in found["explain"]["candidates"]} == {"strong", "weak"}
    assert found["explain"]["scores"]["category"] and "notes" in found["explain"]["signals"]
    assert missing.status_code == 404


def test_a_config_switch_is_audit_logged(caplog: pytest.LogCaptureFixture) -> None:
    with make_client(admin_key=KEY) as client, caplog.at_level(logging.INFO, logger="routeiq.audit"):
        strategies = client.get("/admin/config", headers=ADMIN).json()["strategies"]
        changed = client.put("/admin/config", headers=ADMIN, json={"strategy": strategies[-1]})
        assert changed.status_code == 200
    records = [r for r in caplog.records if r.name == "routeiq.audit"]
    assert len(records) == 1
    fields = records[0].fields  # type: ignore[attr-defined]
    assert fields["action"] == "config" and fields["strategy"][1] == strategies[-1] and fields["request_id"]
