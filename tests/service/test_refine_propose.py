"""Promotion only through an experiment: a real `routeiq serve` on the candidate folder keeps its
active strategy; `routeiq refine --admin-url` starts the A/B experiment, and only the candidate
variant's decisions are made by the new router."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from routeiq.cli import main
from tests._harness.service import ServeProcess
from tests.unit.test_refine import _write_rows

ADMIN_KEY = "refine-admin-key-0123456789"


def test_refine_starts_an_experiment_and_never_replaces_the_active_strategy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "rows"
    _write_rows(rows, 240)
    first = tmp_path / "candidate"
    assert main(["refine", "--rows", str(rows), "--out", str(first), "--name", "prod-knn"]) == 0
    capsys.readouterr()
    with (
        ServeProcess(tmp_path / "serve", models_path=first, admin_key=ADMIN_KEY) as server,
        httpx.Client(
            base_url=server.url, trust_env=False, timeout=10, headers={"X-RouteIQ-Admin-Key": ADMIN_KEY}
        ) as http,
    ):
        config = http.get("/admin/config").json()
        assert config["strategy"] == "centroid" and "ml:prod-knn" in config["strategies"]
        before = http.post("/route", json={"prompt": "Prove that sqrt(2) is irrational"}).json()
        assert "experiment" not in before  # serving the candidate folder changes nothing by itself

        monkeypatch.setenv("ROUTEIQ_ADMIN_KEY", ADMIN_KEY)
        again = tmp_path / "again"
        args = ["refine", "--rows", str(rows), "--out", str(again), "--name", "prod-knn"]
        assert main([*args, "--admin-url", server.url]) == 0
        assert "started experiment 'refine-prod-knn'" in capsys.readouterr().out

        strategies: dict[str, set[str]] = {}
        for i in range(40):
            body = {"prompt": f"Prove that the square root of {i + 2} is irrational", "user": f"u{i}"}
            decision = http.post("/route", json=body).json()
            strategies.setdefault(decision["variant"], set()).add(decision["strategy"])
        assert set(strategies) == {"active", "candidate"}
        assert "ml:prod-knn" in strategies["candidate"]
        assert "ml:prod-knn" not in strategies["active"]
        assert http.get("/admin/config").json()["strategy"] == "centroid"  # still the active one


def test_admin_url_refuses_a_service_that_has_not_loaded_the_candidate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "rows"
    _write_rows(rows, 200)
    monkeypatch.setenv("ROUTEIQ_ADMIN_KEY", ADMIN_KEY)
    with ServeProcess(tmp_path / "serve", admin_key=ADMIN_KEY) as server:  # the bundled folder
        args = ["refine", "--rows", str(rows), "--out", str(tmp_path / "c"), "--name", "prod-knn"]
        assert main([*args, "--admin-url", server.url]) == 2
        assert "has not loaded ml:prod-knn" in capsys.readouterr().err
        experiments = httpx.get(
            server.url + "/admin/experiments", headers={"X-RouteIQ-Admin-Key": ADMIN_KEY}, trust_env=False
        ).json()
        assert experiments == {"experiments": []}
