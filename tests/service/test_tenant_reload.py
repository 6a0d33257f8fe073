"""A tenant whose own files (catalog, profiles, prototypes from the tenants file) do not load is
refused when its configuration is loaded — a tenants-file change naming it is rejected whole and
the tenants in force keep serving; its requests get a 503 naming the problem, never a 500."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from routeiq.errors import ConfigError
from tests._harness import ServeProcess
from tests.conftest import make_client

A_TOKEN = "cluster-a-token-0123456789"
B_TOKEN = "cluster-b-token-0123456789"
C_TOKEN = "cluster-c-token-0123456789"
KEY = "global-admin-key-0123456789"
A = {"Authorization": f"Bearer {A_TOKEN}"}
C = {"Authorization": f"Bearer {C_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {KEY}"}
C_CATALOG = (
    "models:\n  - deployment_id: c-only\n    model: c/private-model\n    tier: mid\n    quality: 0.7\n"
)


def replace_file(path: Path, text: str) -> None:
    """Write then rename: a watcher never reads half a file."""
    partial = path.with_suffix(".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def eventually(call: Callable[[], object], check: Callable[[object], bool], within: float) -> object:
    deadline = time.monotonic() + within
    while True:
        result = call()
        if check(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def test_a_tenant_added_by_a_token_reload_whose_files_do_not_load_gets_503_not_500(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    replace_file(tokens, f"clients:\n  cluster-a: {A_TOKEN}\n")
    catalog = tmp_path / "c-catalog.yaml"
    catalog.write_text(C_CATALOG, encoding="utf-8")
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text(
        "tenants:\n  cluster-a:\n    default_profile: eco\n  cluster-c:\n    catalog_file: c-catalog.yaml\n",
        encoding="utf-8",
    )
    with (
        ServeProcess(
            tmp_path / "serve", auth_tokens_file=tokens, tenants_file=tenants, admin_key=KEY
        ) as server,
        httpx.Client(base_url=server.url, timeout=10, trust_env=False) as http,
    ):
        assert http.post("/route", json={"prompt": "hi"}, headers=A).json()["profile"] == "eco"
        catalog.write_text("models: [oops\n", encoding="utf-8")  # broken after it was accepted
        replace_file(tokens, f"clients:\n  cluster-a: {A_TOKEN}\n  cluster-c: {C_TOKEN}\n")
        answer = eventually(
            lambda: http.post("/route", json={"prompt": "hi"}, headers=C | {"X-Request-ID": "c-1"}),
            lambda r: r.status_code not in (401, 403),  # type: ignore[attr-defined]
            within=5.0,
        )
        assert isinstance(answer, httpx.Response)
        assert answer.status_code == 503, answer.text
        error = answer.json()["error"]
        assert error["type"] == "tenant_unavailable" and error["tenant"] == "cluster-c"
        assert "c-catalog.yaml" in error["message"] and "not valid YAML" in error["message"]
        # the caller learns which file, not where the server keeps it (the log and /admin say)
        assert str(tmp_path) not in error["message"], error["message"]
        assert answer.headers["X-Request-ID"] == "c-1" and int(answer.headers["Retry-After"]) > 0
        assert http.get("/v1/catalog", headers=C).status_code == 503  # every endpoint, the same
        # the tenant in force is not disturbed
        assert http.post("/route", json={"prompt": "hi"}, headers=A).json()["profile"] == "eco"
        listed = http.get("/admin/tenants", headers=ADMIN).json()["tenants"]
        assert (
            "c-catalog.yaml" in listed["cluster-c"]["unavailable"]
            and "unavailable" not in listed["cluster-a"]
        )
        metrics = http.get("/metrics").text
        assert 'routeiq_tenant_refusals_total{reason="unavailable",tenant="cluster-c"}' in metrics
        log = server.log()
        assert "Traceback" not in log and "internal error" not in log
        named = [line for line in log.splitlines() if "cluster-c" in line and "c-catalog.yaml" in line]
        assert named and "not valid YAML" in named[0], log[-3000:]
        # fixed and re-read: served with its own catalog, no restart
        catalog.write_text(C_CATALOG, encoding="utf-8")
        assert http.post("/admin/tenants/reload", headers=ADMIN).status_code == 200
        fixed = http.get("/v1/catalog", headers=C)
        assert fixed.status_code == 200 and "c-only" in {m["deployment_id"] for m in fixed.json()["models"]}


def test_a_tenants_file_naming_a_tenant_whose_files_do_not_load_is_refused_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "c-catalog.yaml").write_text(C_CATALOG, encoding="utf-8")
    path = tmp_path / "tenants.yaml"
    path.write_text("tenants:\n  cluster-a:\n    default_profile: eco\n", encoding="utf-8")
    tokens = f"cluster-a:{A_TOKEN},cluster-b:{B_TOKEN}"
    with make_client(auth_tokens=tokens, tenants_file=path, admin_key=KEY) as client:
        # cluster-c has no token yet: its files are checked all the same
        path.write_text(
            "tenants:\n  cluster-a:\n    default_profile: eco\n    weight: 5\n"
            "  cluster-c:\n    catalog_file: c-catalog.yaml\n    profiles_file: c-profiles.yaml\n",
            encoding="utf-8",
        )
        refused = client.post("/admin/tenants/reload", headers=ADMIN)
        assert refused.status_code == 422, refused.text
        message = refused.json()["error"]["message"]
        assert "tenant 'cluster-c'" in message and "c-profiles.yaml" in message and "missing" in message
        assert client.get("/admin/tenants", headers=ADMIN).json()["tenants"]["cluster-a"]["weight"] == 1
        # A change the watcher finds is refused the same way, logged, and the watcher goes on.
        with caplog.at_level(logging.ERROR, logger="routeiq.tenants"):
            path.write_text(
                "tenants:\n  cluster-a:\n    default_profile: no-such-profile\n", encoding="utf-8"
            )
            eventually(lambda: caplog.text, lambda text: "no-such-profile" in str(text), within=5.0)
        refusal = [r.getMessage() for r in caplog.records if "no-such-profile" in r.getMessage()]
        assert refusal and "tenant 'cluster-a'" in refusal[0] and "previous settings stay" in refusal[0]
        assert client.get("/v1/profiles", headers=A).json()["default"] == "eco"
        path.write_text("tenants:\n  cluster-a:\n    default_profile: premium\n", encoding="utf-8")
        profiles = eventually(
            lambda: client.get("/v1/profiles", headers=A).json()["default"],
            lambda default: default == "premium",
            within=5.0,
        )
        assert profiles == "premium"


def test_start_up_checks_the_files_of_a_tenant_without_a_token_yet(tmp_path: Path) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text("tenants:\n  cluster-c:\n    catalog_file: c-catalog.yaml\n", encoding="utf-8")
    with (
        pytest.raises(ConfigError, match=r"tenant 'cluster-c'.*c-catalog\.yaml"),
        make_client(auth_tokens=f"cluster-a:{A_TOKEN}", tenants_file=path),
    ):
        pass
