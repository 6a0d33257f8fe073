"""RouteIQ's hook on a real litellm.Router (mock_response deployments) against a real routeiq
service subprocess and, for faults the service cannot be made to produce, a stub HTTP server.
Every fault must end in a successful completion, served by LiteLLM's own selection."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import litellm
import pytest

from tests._harness import ServeProcess, free_port, written_rows

from .conftest import example_model_list
from .routed import HI, Routed, make_routed, served_by
from .stub_sidecar import StubSidecar

__all__ = ["make_routed"]  # a fixture: imported to be found here

AUTO_IDS = {d["model_info"]["id"] for d in example_model_list()}
Make = Callable[..., Routed]


def one(r: Routed, model: str = "auto", **kwargs: Any) -> Any:
    (result,) = r.run(1, group=model, **kwargs)
    return result


# -- the sidecar up ------------------------------------------------------------------------------


def test_profile_in_metadata_changes_the_choice(service: ServeProcess, make_routed: Make) -> None:
    r = make_routed(service.url, example_model_list())
    eco = served_by(one(r, metadata={"routeiq_profile": "eco"}))
    premium = served_by(one(r, metadata={"routeiq_profile": "premium"}))
    # eco: cheapest budget model; premium: a premium-tier model. Both chosen by the sidecar.
    assert eco == "gemini-2.0-flash", r.decisions()
    assert premium in {"gpt-4o", "claude-sonnet-4"}
    assert r.decisions() == {"sidecar": 2}


def test_proxy_header_in_metadata_is_read(service: ServeProcess, make_routed: Make) -> None:
    r = make_routed(service.url, example_model_list())
    # What the proxy puts in request_kwargs: lower-cased headers under metadata / litellm_metadata.
    for bucket in ("metadata", "litellm_metadata"):
        kwargs = {bucket: {"headers": {"x-routeiq-profile": "eco"}}}
        assert served_by(one(r, **kwargs)) == "gemini-2.0-flash", (bucket, r.decisions())


def test_sync_completion_keeps_litellms_own_selection(service: ServeProcess, make_routed: Make) -> None:
    # LiteLLM runs its deployment-filter hooks on the async path only (its own routing plugins
    # refuse the sync path); a sync call is served by LiteLLM alone, never failed.
    r = make_routed(service.url, example_model_list())
    response = r.router.completion(model="auto", messages=HI, metadata={"routeiq_profile": "eco"})
    assert served_by(response) in AUTO_IDS
    assert r.decisions() == {}


def test_responses_route_through_the_sidecar_and_embeddings_have_no_text_to_read(
    service: ServeProcess, make_routed: Make
) -> None:
    model_list = example_model_list() + example_model_list("embed")
    r = make_routed(service.url, model_list, groups=("auto", "embed"))

    async def go() -> tuple[Any, Any]:
        try:
            embedding = await r.router.aembedding(model="embed", input=["hello", "world"])
            responses = await r.router.aresponses(
                model="auto",
                input=[{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
                metadata={"routeiq_profile": "eco"},
            )
            return embedding, responses
        finally:
            await r.resources.client.aclose()

    embedding, responses = asyncio.run(go())
    assert served_by(embedding) in {"text-embedding-3-small", "text-embedding-3-large"}
    assert responses.output[0].content[0].text == "served by gemini-2.0-flash"
    # LiteLLM hands the filter hook no embedding input: LiteLLM selects alone.
    assert r.decisions() == {"sidecar": 1, "fallback:no_text": 1}


def test_deployment_id_and_alias(service: ServeProcess, make_routed: Make) -> None:
    r = make_routed(service.url, example_model_list(), {"model_group_alias": {"router": "auto"}})
    assert served_by(one(r, "gpt-4o")) == "gpt-4o"  # LiteLLM resolved it: nothing to narrow
    assert served_by(one(r, "router", metadata={"routeiq_profile": "eco"})) == "gemini-2.0-flash"
    assert r.decisions() == {"sidecar": 1}


def test_outcomes_reach_the_service(service: ServeProcess, make_routed: Make) -> None:
    # Own deployment ids: LiteLLM delivers callbacks of earlier tests' calls late (a global
    # logging worker), and they must not be counted here.
    model_list = [{**d, "model_info": {"id": d["model_info"]["id"] + "-fb"}} for d in example_model_list()]
    r = make_routed(service.url, model_list, feedback=True, feedback_interval_s=0.05)
    reporter = r.resources.reporter
    assert reporter is not None

    def counted() -> bool:
        reporter.flush()
        stats = service.stats()["deployments"].get("gemini-2.0-flash-fb", {})  # type: ignore[attr-defined]
        return int(stats.get("successes", 0)) >= 3

    r.run(3, until=counted, metadata={"routeiq_profile": "eco"})
    after = service.stats()["deployments"]["gemini-2.0-flash-fb"]  # type: ignore[index]
    assert after["successes"] == 3  # exactly once per request
    assert after["mean_latency_ms"] is not None


def test_outcomes_count_for_the_decisions_experiment_and_training_row(
    make_routed: Make, tmp_path: Path
) -> None:
    """An outcome reported by the hook carries its decision's request id, experiment and variant:
    A/B readouts get their success rates, and learning from production its joined rows."""
    key = "router-strategy-admin-0123456789"
    admin = {"Authorization": f"Bearer {key}"}
    rows = tmp_path / "rows"
    model_list = [{**d, "model_info": {"id": d["model_info"]["id"] + "-ab"}} for d in example_model_list()]
    with ServeProcess(tmp_path / "serve", admin_key=key, training_rows_dir=rows) as service:
        experiment = {
            "name": "hook-ab",
            "assign_by": ["request"],
            "variants": [
                {"name": "control", "weight": 1, "strategy": "centroid"},
                {"name": "treatment", "weight": 1, "profile": "eco"},
            ],
        }
        started = httpx.post(
            f"{service.url}/admin/experiments", json=experiment, headers=admin, trust_env=False
        )
        assert started.status_code == 201, started.text
        r = make_routed(service.url, model_list, feedback=True, feedback_interval_s=0.05)
        reporter = r.resources.reporter
        assert reporter is not None

        def readout() -> dict[str, Any]:
            got = httpx.get(f"{service.url}/admin/experiments/hook-ab", headers=admin, trust_env=False)
            return dict(got.json())

        def counted() -> bool:
            reporter.flush()
            return sum(v["outcomes"] for v in readout()["variants"]) >= 4

        r.run(4, until=counted)
        final = readout()
        assert final["decisions"] == 4
        assert sum(v["outcomes"] for v in final["variants"]) == 4, final["variants"]
        assert sum(v["successes"] for v in final["variants"]) == 4
        joined = written_rows(rows)
        deadline = time.monotonic() + 10
        while len(joined) < 4 and time.monotonic() < deadline:  # the writer thread appends
            time.sleep(0.1)
            joined = written_rows(rows)
        assert len(joined) == 4 and all(row["success"] for row in joined), joined


# -- faults: LiteLLM selects alone ----------------------------------------------------------------


def test_service_killed_falls_back_then_circuit_opens(make_routed: Make, tmp_path: Path) -> None:
    with ServeProcess(tmp_path) as service:  # killed on exit, also if an assertion fails first
        r = make_routed(service.url, example_model_list(), failure_threshold=2, open_seconds=60)
        assert served_by(one(r)) in AUTO_IDS
        service.kill()
    served = [served_by(x) for x in r.run(4)]
    assert set(served) <= AUTO_IDS
    assert r.decisions() == {"sidecar": 1, "fallback:connect_error": 2, "circuit_open": 2}
    assert r.resources.breaker.state == "open"


def test_slow_service_is_abandoned_at_the_deadline(make_routed: Make) -> None:
    with StubSidecar(mode="slow", delay=1.0) as stub:
        r = make_routed(stub.url, example_model_list(), deadline_ms=50)
        start = time.perf_counter()
        response = one(r)
        elapsed = time.perf_counter() - start
    assert served_by(response) in AUTO_IDS
    assert elapsed < 0.8  # did not wait the stub's 1 s
    assert r.decisions() == {"fallback:timeout": 1}


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("garbage", "bad_response"), ("unknown", "unknown_deployment"), ("error", "http_error")],
)
def test_bad_answers_fall_back(mode: str, reason: str, make_routed: Make) -> None:
    with StubSidecar(mode=mode) as stub:
        r = make_routed(stub.url, example_model_list())
        response = one(r)
    assert served_by(response) in AUTO_IDS
    assert r.decisions() == {f"fallback:{reason}": 1}


def test_nothing_listening_at_all(make_routed: Make) -> None:
    r = make_routed(f"http://127.0.0.1:{free_port()}", example_model_list())
    assert served_by(one(r)) in AUTO_IDS
    assert r.decisions() == {"fallback:connect_error": 1}


def test_deployment_in_cooldown_is_never_offered(make_routed: Make) -> None:
    model_list = example_model_list()
    model_list[0] = {
        **model_list[0],
        "litellm_params": {**model_list[0]["litellm_params"], "mock_response": "litellm.RateLimitError"},
    }
    broken = model_list[0]["model_info"]["id"]
    with StubSidecar(mode="ok") as stub:  # always answers the first candidate it is offered
        r = make_routed(
            stub.url,
            model_list,
            {"num_retries": 1, "allowed_fails": 0, "cooldown_time": 60, "retry_after": 0},
        )
        response, later = r.run(2)
        offered = [[c["deployment_id"] for c in body["candidates"]] for body in stub.routes()]  # type: ignore[union-attr]
    assert offered[0][0] == broken  # the stub chose the failing one first
    assert len(offered) == 2  # the retry did not ask again; the second call did
    assert broken not in offered[1]  # LiteLLM cooled it down
    assert served_by(response) != broken and served_by(later) != broken


def test_router_errors_pass_through_unchanged(service: ServeProcess, make_routed: Make) -> None:
    r = make_routed(service.url, example_model_list())
    assert isinstance(one(r, "no-such-group"), litellm.BadRequestError)
    assert r.decisions() == {}


def test_secrets_never_reach_the_sidecar(make_routed: Make) -> None:
    secret = "sk-secret-0123456789"
    with StubSidecar(mode="ok") as stub:
        r = make_routed(stub.url, example_model_list())
        metadata = {
            "headers": {
                "authorization": f"Bearer {secret}",
                "x-routeiq-profile": "eco",
                "x-routeiq-session": "s1",
            },
            "user_api_key": secret,
            "user_api_key_auth": {"api_key": secret, "token": secret},
            "user_api_key_alias": "ci-key",
            "user_api_key_team_id": "team-a",
        }
        one(
            r,
            metadata=metadata,
            secret_fields={"raw_headers": {"authorization": secret}},
            api_key=secret,
            user="u1",
        )
        body = stub.routes()[0]
    assert secret not in json.dumps(body)
    assert (body["profile"], body["session_id"], body["key_alias"], body["team"], body["user"]) == (
        "eco",
        "s1",
        "ci-key",
        "team-a",
        "u1",
    )
