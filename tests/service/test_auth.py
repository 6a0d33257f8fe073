"""Bearer tokens for shared mode: every path through the check, on the real app."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from routeiq.errors import ConfigError
from routeiq.http.auth import TokenSet, bearer_token, startup_warnings
from routeiq.settings import Settings, load_settings
from tests.conftest import make_client

ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdefgh"
ROUTE = {"prompt": "hello there"}
FEEDBACK = {"outcomes": [{"deployment_id": "gpt-4o-mini", "success": True}]}
PROTECTED = [("/route", ROUTE), ("/route/batch", [ROUTE]), ("/feedback", FEEDBACK)]


@pytest.fixture(scope="module")
def secured():  # type: ignore[no-untyped-def]
    with make_client(auth_tokens=f"alice:{ALICE},bob:{BOB}") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(("path", "body"), PROTECTED)
def test_known_token_is_let_in(secured, path: str, body: object) -> None:  # type: ignore[no-untyped-def]
    assert secured.post(path, json=body, headers=bearer(ALICE)).status_code == 200
    assert secured.post(path, json=body, headers=bearer(BOB)).status_code == 200


@pytest.mark.parametrize(("path", "body"), PROTECTED)
def test_missing_token_is_401_with_challenge(secured, path: str, body: object) -> None:  # type: ignore[no-untyped-def]
    response = secured.post(path, json=body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert error["type"] == "unauthorized" and error["field"] == "Authorization"
    assert "missing" in error["message"]
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(
    "header", [f"Basic {ALICE}", "Bearer", "Bearer ", f"Bearer {ALICE} extra", ALICE, f"Token {ALICE}"]
)
def test_malformed_header_is_401(secured, header: str) -> None:  # type: ignore[no-untyped-def]
    response = secured.post("/route", json=ROUTE, headers={"Authorization": header})
    assert response.status_code == 401, header
    assert response.json()["error"]["type"] == "unauthorized"
    assert "malformed" in response.json()["error"]["message"]


@pytest.mark.parametrize("token", ["wrong-token-0123456789abcdef", ALICE[:-1], ALICE + "x", ALICE.upper()])
def test_unknown_token_is_403(secured, token: str) -> None:  # type: ignore[no-untyped-def]
    response = secured.post("/route", json=ROUTE, headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["error"] == {
        "type": "forbidden",
        "message": "unknown token",
        "field": "Authorization",
    }


def test_scheme_is_case_insensitive(secured) -> None:  # type: ignore[no-untyped-def]
    response = secured.post("/route", json=ROUTE, headers={"Authorization": f"bearer {ALICE}"})
    assert response.status_code == 200


def test_open_endpoints_need_no_token(secured) -> None:  # type: ignore[no-untyped-def]
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert secured.get(path).status_code == 200, path


@pytest.mark.parametrize("path", ["/v1/deployments/stats", "/v1/catalog", "/v1/profiles"])
def test_tenant_readouts_need_a_token_when_auth_is_on(secured, path: str) -> None:  # type: ignore[no-untyped-def]
    # Each tenant has its own stats, catalog and profiles: without a token there is no tenant.
    assert secured.get(path).status_code == 401
    assert secured.get(path, headers=bearer(ALICE)).status_code == 200


def test_unauthenticated_body_is_never_read(secured) -> None:  # type: ignore[no-untyped-def]
    # Larger than the body limit and not JSON: auth answers first, before the body is looked at.
    response = secured.post("/route", content=b"x" * 2_000_000, headers={"content-type": "application/json"})
    assert response.status_code == 401
    response = secured.post("/route", content=b"{not json", headers=bearer("nope-nope-nope-nope-nope"))
    assert response.status_code == 403


def test_auth_off_without_tokens(client) -> None:  # type: ignore[no-untyped-def]
    assert client.post("/route", json=ROUTE).status_code == 200


def test_client_names_in_metrics_and_logs_never_tokens(secured, caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.INFO, logger="routeiq.access"):
        secured.post("/route", json=ROUTE, headers=bearer(BOB))
        secured.post("/route", json=ROUTE, headers=bearer("wrong-token-0123456789abcdef"))
    scraped = generate_latest(secured.app.state.metrics.registry).decode()
    assert 'routeiq_auth_requests_total{client="bob",result="ok"}' in scraped
    assert 'routeiq_auth_requests_total{client="none",result="forbidden"}' in scraped
    records = [r for r in caplog.records if r.name == "routeiq.access"]
    assert [r.fields.get("client") for r in records] == ["bob", None]  # type: ignore[attr-defined]
    logged = " ".join(str(r.__dict__) for r in records)
    for secret in (ALICE, BOB, "wrong-token-0123456789abcdef"):
        assert secret not in logged and secret not in scraped


def test_tokens_from_file_merge_with_env(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(f"clients:\n  carol: {'c' * 20}\n  dave: '{'d' * 20}'\n", encoding="utf-8")
    tokens = TokenSet.from_settings(Settings(auth_tokens=f"alice:{ALICE}", auth_tokens_file=path))
    assert sorted(tokens.digests) == ["alice", "carol", "dave"]
    assert tokens.identify("c" * 20) == "carol" and tokens.identify(ALICE) == "alice"
    assert tokens.identify("c" * 19) is None and tokens.identify("") is None
    plain = tmp_path / "plain.yaml"  # a bare mapping works too (e.g. a Kubernetes secret file)
    plain.write_text(f"erin: {'e' * 20}\n", encoding="utf-8")
    assert list(TokenSet.from_settings(Settings(auth_tokens_file=plain)).digests) == ["erin"]


@pytest.mark.parametrize(
    ("tokens", "problem"),
    [
        ("alice:short", "at least 16"),
        (f"alice:{ALICE},bob:{ALICE}", "share one token"),
        (f"bad name:{ALICE}", "must match"),
        (ALICE, "name:token"),
        (f"alice: {ALICE}", "surrounding spaces"),
    ],
)
def test_bad_token_config_is_refused(tokens: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        TokenSet.from_settings(Settings(auth_tokens=tokens))
    assert ALICE not in str(caught.value) and BOB not in str(caught.value)


def test_a_client_may_hold_two_tokens_during_a_rotation(tmp_path: Path) -> None:
    tokens = TokenSet.from_settings(Settings(auth_tokens=f"alice:{ALICE},alice:{BOB}"))
    assert tokens.identify(ALICE) == tokens.identify(BOB) == "alice"
    path = tmp_path / "tokens.yaml"
    path.write_text(f"clients:\n  carol: ['{'c' * 20}', '{'d' * 20}']\n", encoding="utf-8")
    from_file = TokenSet.from_settings(Settings(auth_tokens_file=path))
    assert from_file.identify("c" * 20) == from_file.identify("d" * 20) == "carol"


def test_bad_token_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ROUTEIQ_AUTH_TOKENS_FILE=.*: no such file"):
        TokenSet.from_settings(load_settings(auth_tokens_file=tmp_path / "absent.yaml"))
    listed = tmp_path / "list.yaml"
    listed.write_text("clients: [a, b]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must map"):
        TokenSet.from_settings(Settings(auth_tokens_file=listed))
    with pytest.raises(ConfigError):
        make_client(auth_tokens="x:y")  # create_app loads tokens: start-up stops here


def test_bearer_token_parsing() -> None:
    assert bearer_token(None) == (None, "missing")
    assert bearer_token("Bearer abc") == ("abc", "")
    assert bearer_token("  BEARER   abc  ") == ("abc", "")
    assert bearer_token("Basic abc") == (None, "malformed")


def test_startup_warns_beyond_loopback_without_auth() -> None:
    off = TokenSet({})
    on = TokenSet.from_settings(Settings(auth_tokens=f"alice:{ALICE}"))
    assert any("authentication is OFF" in w for w in startup_warnings(Settings(host="0.0.0.0"), off))
    assert any("authentication is OFF" in w for w in startup_warnings(Settings(host="10.1.2.3"), off))
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert startup_warnings(Settings(host=host), off) == [], host
    assert startup_warnings(Settings(host="0.0.0.0"), on) == []
    assert startup_warnings(Settings(log_prompts=True), on) != []


def test_start_up_logs_the_warning(caplog) -> None:  # type: ignore[no-untyped-def]
    # TestClient binds nothing: host only tells the app where it would listen.
    with caplog.at_level(logging.WARNING, logger="routeiq"), make_client(host="0.0.0.0"):
        pass
    assert any("authentication is OFF" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with (
        caplog.at_level(logging.WARNING, logger="routeiq"),
        make_client(host="0.0.0.0", auth_tokens=f"a:{ALICE}"),
    ):
        pass
    assert not any("authentication is OFF" in r.getMessage() for r in caplog.records)
