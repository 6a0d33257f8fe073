"""Hypothesis property tests: hostile requests through the real server (raw HTTP), through the
request parser in process, and random catalogs/profiles through the policy.

`make test` runs a small version; `pytest -m fuzz tests/fuzz` the full one."""

from __future__ import annotations

import json
import math

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from routeiq.decision.catalog import CatalogEntry
from routeiq.decision.classify import Classification
from routeiq.decision.policy import hard_exclusion, select
from routeiq.decision.profiles import Profile
from routeiq.decision.prompt import embed_segments, view_of
from routeiq.decision.schemas import MODEL_TIERS, TIERS, RouteRequest
from routeiq.decision.signals import Signals, extract_signals
from routeiq.engine import Engine
from routeiq.errors import RouteIQError
from routeiq.http import request_limits as limits
from tests._harness import ServeProcess
from tests.fuzz.counts import COUNTS, TOKEN
from tests.fuzz.strategies import feedback_body, route_body

_BASE = {"deadline": None, "suppress_health_check": list(HealthCheck), "derandomize": True, "database": None}
SCALE = {  # (small, full) examples
    "http": (150, 4000),
    "parser": (300, 4000),
    "policy": (300, 2000),
}


def _encode(body: object) -> bytes:
    # ensure_ascii: lone surrogates travel as \\ud800 escapes (valid JSON); NaN/Infinity as the
    # non-standard tokens Python's parser accepts; a body json cannot encode goes out truncated.
    try:
        return json.dumps(body, ensure_ascii=True, allow_nan=True).encode()
    except (ValueError, RecursionError):
        return b'{"prompt": "trunc'


def http_fuzz(server: ServeProcess, examples: int) -> None:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ) as client:
        _http_fuzz(client, examples)


def _http_fuzz(client: httpx.Client, examples: int) -> None:
    paths = st.sampled_from(["/route", "/route", "/route/batch", "/feedback"])

    @settings(max_examples=examples, **_BASE)
    @given(
        path=paths,
        route=route_body,
        batch=st.lists(route_body, max_size=4),
        feedback=feedback_body,
        cut=st.integers(0, 20),
    )
    def call(path: str, route: object, batch: list[object], feedback: object, cut: int) -> None:
        body = {"/route": route, "/route/batch": batch, "/feedback": feedback}[path]
        raw = _encode(body)
        if cut == 0:
            raw = raw[: len(raw) // 2]  # now and then a truncated document
        response = client.post(path, content=raw, headers={"content-type": "application/json"})
        COUNTS["generated:http"] += 1
        COUNTS[f"http:{response.status_code // 100}xx"] += 1
        assert response.status_code < 500, f"{path} {raw[:300]!r} -> {response.text[:300]}"
        assert response.headers["x-request-id"]
        if response.status_code >= 400:
            assert response.json()["error"]["type"]

    call()


def test_http_fuzz_small(fuzz_server: ServeProcess) -> None:
    http_fuzz(fuzz_server, SCALE["http"][0])


@pytest.mark.fuzz
def test_http_fuzz_full(fuzz_server: ServeProcess) -> None:
    http_fuzz(fuzz_server, SCALE["http"][1])


def parse_and_prepare(engine: Engine, body: object) -> None:
    """The parser stages of a decision, in process: schema -> limits -> view -> signals ->
    segments -> catalog -> profile. Only a ValidationError or a 4xx RouteIQError may come out."""
    COUNTS["generated:parser"] += 1
    try:
        request = RouteRequest.model_validate(body)
    except ValidationError:
        COUNTS["parser:invalid"] += 1
        return
    try:
        limits.enforce(request, engine.settings)
        view = view_of(request)
        signals = extract_signals(view, len(request.tools or ()))
        segments = embed_segments(view, engine.settings.token_budget)
        for segment in segments:
            segment.encode("utf-8")  # what the tokenizer needs: no lone surrogates left
            assert len(segment) <= engine.settings.token_budget * 6 + 3
        entries, _ = engine.snapshot.catalog.candidates_for(request)
        assert entries
        engine.snapshot.profiles.resolve(None, request.profile, request.team, request.key_alias)
        assert signals.approx_tokens >= 0 and signals.messages >= 0
    except RouteIQError as exc:
        assert 400 <= exc.status < 500, f"{type(exc).__name__}: {exc.message}"
        COUNTS["parser:4xx"] += 1
        return
    COUNTS["parser:accepted"] += 1


def parser_fuzz(engine: Engine, examples: int) -> None:
    @settings(max_examples=examples, **_BASE)
    @given(body=route_body)
    def check(body: object) -> None:
        parse_and_prepare(engine, body)

    check()


def test_parser_small(engine: Engine) -> None:
    parser_fuzz(engine, SCALE["parser"][0])


@pytest.mark.fuzz
def test_parser_full(engine: Engine) -> None:
    parser_fuzz(engine, SCALE["parser"][1])


unit = st.floats(0, 1)
costs = st.one_of(st.none(), st.floats(0, 100))
entries = st.lists(
    st.builds(
        CatalogEntry,
        deployment_id=st.text("abcdefgh", min_size=1, max_size=3),
        model=st.sampled_from(["m1", "m2", "m3"]),
        provider=st.sampled_from([None, "openai", "anthropic", "local"]),
        tier=st.sampled_from(MODEL_TIERS),
        quality=unit,
        input_cost_per_mtok=costs,
        output_cost_per_mtok=costs,
        max_input_tokens=st.one_of(st.none(), st.integers(1, 200_000)),
        supports_tools=st.booleans(),
        supports_reasoning=st.booleans(),
        supports_vision=st.booleans(),
        free=st.booleans(),
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda e: e.deployment_id,
)
profiles = st.builds(
    Profile,
    name=st.just("p"),
    quality_floor=st.one_of(st.none(), unit),
    max_cost_per_mtok=st.one_of(st.none(), st.floats(0, 50)),
    required_capabilities=st.lists(st.sampled_from(["tools", "reasoning", "vision"]), max_size=2),
    allowed_providers=st.lists(st.sampled_from(["openai", "anthropic", "local"]), max_size=2),
    free_only=st.booleans(),
    prefer=st.sampled_from(["cheapest", "balanced", "quality"]),
    category_tiers=st.dictionaries(
        st.sampled_from(["code_generation", "conversation"]), st.sampled_from(MODEL_TIERS)
    ),
)
classifications = st.builds(
    Classification,
    category=st.sampled_from(["code_generation", "conversation", "analysis"]),
    confidence=unit,
    low_confidence=st.booleans(),
    complexity=unit,
    tier=st.sampled_from(TIERS),
    category_scores=st.just({}),
    tier_scores=st.just({}),
    features=st.just({}),
)
signals = st.builds(
    Signals,
    approx_tokens=st.integers(0, 300_000),
    task_tokens=st.integers(0, 1000),
    messages=st.integers(1, 50),
    user_turns=st.integers(0, 20),
    has_system=st.booleans(),
    tools=st.integers(0, 3),
    tool_loop=st.booleans(),
    tool_results=st.integers(0, 3),
    agentic=st.booleans(),
    code=st.booleans(),
    math=st.booleans(),
    reasoning=st.booleans(),
    translation=st.booleans(),
    steps=st.integers(0, 5),
    constraints=st.integers(0, 5),
    questions=st.integers(0, 5),
    language=st.sampled_from(["en", "fr", "zh"]),
    non_english=st.booleans(),
    images=st.integers(0, 2),
)


def policy_fuzz(examples: int) -> None:
    @settings(max_examples=examples, **_BASE)
    @given(entries, profiles, classifications, signals, st.data())
    def check(entries, profile, classification, signals, data) -> None:  # type: ignore[no-untyped-def]
        COUNTS["generated:policy"] += 1
        estimates = [(data.draw(unit), "prior") for _ in entries]
        open_circuits = frozenset(data.draw(st.lists(st.sampled_from([e.deployment_id for e in entries]))))
        selection = select(entries, estimates, profile, classification, signals, open_circuits)
        ranked = [s.entry.deployment_id for s in selection.ranked]
        excluded = [s.entry.deployment_id for s in selection.excluded]
        # every candidate is either ranked or excluded, once, and for the stated reason
        assert sorted(ranked + excluded) == sorted(e.deployment_id for e in entries)
        for s in selection.excluded:
            reason = hard_exclusion(s.entry, profile, signals)
            assert reason is not None and s.excluded == reason, (s.entry.deployment_id, s.excluded, reason)
        for s in selection.ranked:
            assert hard_exclusion(s.entry, profile, signals) is None
            if profile.free_only:
                assert s.entry.is_free
            if profile.max_cost_per_mtok is not None:
                assert s.entry.blended_cost is not None and s.entry.blended_cost <= profile.max_cost_per_mtok
            if signals.tools or signals.tool_loop:
                assert s.entry.supports_tools
            assert math.isfinite(s.cost) and s.cost >= 0
            assert ("circuit_open" in s.demoted) == (s.entry.deployment_id in open_circuits)
        # demoted candidates never outrank clean ones; an open circuit weighs most
        weights = [
            2 * ("circuit_open" in s.demoted) + ("below_quality_floor" in s.demoted) for s in selection.ranked
        ]
        assert weights == sorted(weights)
        if profile.prefer == "quality":
            for a, b in zip(selection.ranked, selection.ranked[1:], strict=False):
                if a.demoted == b.demoted:
                    assert a.quality >= b.quality
        if profile.prefer == "cheapest":
            for a, b in zip(selection.ranked, selection.ranked[1:], strict=False):
                if a.demoted == b.demoted:
                    assert a.cost <= b.cost

    check()


def test_policy_small() -> None:
    policy_fuzz(SCALE["policy"][0])


@pytest.mark.fuzz
def test_policy_full() -> None:
    policy_fuzz(SCALE["policy"][1])
