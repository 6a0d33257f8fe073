"""The decision pipeline: signals -> profile -> session -> embed -> classify -> strategy -> select.

Each stage is a plain function over typed values; this module composes them, times each one and
records metrics once. CPU-bound embedding runs on the engine's thread pool, never on the loop;
a cached embedding never leaves the loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .budget import apply_premium_budget
from .catalog import CatalogEntry
from .classify import Classification, classify, describe
from .embed import Vector, cache_key
from .engine import Engine
from .errors import InvalidRequest, NoCandidate, Overloaded
from .experiments import KeyKind
from .extract import PromptView, embed_segments, view_of
from .metrics import label
from .policy import Scored, Selection, hard_exclusion, select
from .profiles import Profile
from .schemas import CandidateExplain, RouteRequest, RouteResponse
from .signals import Signals, extract_signals
from .state import SessionRecord
from .strategies import Strategy

MAX_FALLBACKS = 5


@dataclass
class Context:
    """Per-request inputs that do not come from the body."""

    request_id: str
    profile_header: str | None = None
    session_header: str | None = None


@dataclass
class _Clock:
    timings: dict[str, float] = field(default_factory=dict)
    _last: float = field(default_factory=time.perf_counter)
    start: float = field(default_factory=time.perf_counter)

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + (now - self._last) * 1000
        self._last = now

    def total_ms(self) -> float:
        return (time.perf_counter() - self.start) * 1000


def session_key(request: RouteRequest, ctx: Context, view: PromptView) -> str | None:
    """The caller's session id, else a fingerprint of the conversation's opening (system prompt
    + first user turn) once it has more than one message: agent loops stick without an id."""
    scope = f"{request.team or ''}|{request.user or ''}"
    explicit = ctx.session_header or request.session_id
    if explicit:
        return f"s:{scope}|{explicit}"
    if view.messages > 1 and request.messages:
        first_user = next((m for m in request.messages if m.role == "user"), None)
        opening = f"{view.system}\x1f{first_user.content if first_user else ''}"
        return (
            "c:"
            + scope
            + "|"
            + hashlib.blake2b(opening.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()
        )
    return None


@dataclass(frozen=True)
class Assignment:
    """This request's A/B variant: what it overrides, and notes for the reason."""

    experiment: str
    variant: str
    strategy: str | None
    profile: Profile | None
    notes: tuple[str, ...] = ()


def assign(
    engine: Engine, request: RouteRequest, ctx: Context, profile: Profile, key: str | None
) -> Assignment | None:
    """The first running experiment this request takes part in (by resolved profile), and its
    variant by the experiment's stable key. Pure: every replica assigns the same."""
    if not engine.settings.ab_testing_enabled:
        return None
    user = f"{request.team or ''}|{request.user}" if request.user else None
    keys: dict[KeyKind, str | None] = {"session": key, "user": user, "request": ctx.request_id}
    for spec in engine.runtime.experiments:
        if not spec.running or (spec.profile is not None and spec.profile != profile.name):
            continue
        stable = spec.stable_key(keys)
        if stable is None:
            continue
        variant = spec.variant_for(stable[1])
        notes = [f"exp:{spec.name}={variant.name}"]
        vprofile = engine.profiles.profiles.get(variant.profile) if variant.profile else None
        if variant.profile and vprofile is None:
            notes.append(f"variant_profile_missing:{variant.profile}")
        return Assignment(spec.name, variant.name, variant.strategy, vprofile, tuple(notes))
    return None


async def decide(engine: Engine, request: RouteRequest, ctx: Context) -> RouteResponse:
    """One decision, then what is shared about it: the experiment counter (exact across replicas)
    and this worker's recent-decisions buffer."""
    response = await _decide(engine, request, ctx)
    if response.experiment and response.variant:
        await engine.state.count_decision(response.experiment, response.variant)
        engine.metrics.experiment_decisions.labels(label(response.experiment), label(response.variant)).inc()
    engine.recent.add(response)
    return response


async def _decide(engine: Engine, request: RouteRequest, ctx: Context) -> RouteResponse:
    clock = _Clock()
    view = view_of(request)
    signals = extract_signals(view, len(request.tools or ()))
    segments = embed_segments(view, engine.settings.token_budget)
    if not segments:
        raise InvalidRequest(
            "the request has no text to route: messages carry no user or system text",
            field="messages" if request.messages is not None else "prompt",
        )
    clock.lap("signals")

    metadata = request.metadata or {}
    profile = engine.profiles.resolve(
        ctx.profile_header,
        request.profile or _str(metadata.get("routeiq_profile")),
        request.team,
        request.key_alias,
    )
    entries, catalog_note = engine.catalog.candidates_for(request)
    clock.lap("profile")

    key = session_key(request, ctx, view)
    assignment = assign(engine, request, ctx, profile, key)
    if assignment is not None and assignment.profile is not None:
        profile = assignment.profile
    sticky = await _session_choice(engine, key, profile, signals, entries)
    clock.lap("session")
    if sticky is not None:
        response = _session_response(engine, sticky, profile, ctx, signals, request, clock)
        _mark_assignment(response, assignment, ())
        return response

    vector = await _embed(engine, segments)
    clock.lap("embed")
    classification = classify(
        vector,
        signals,
        engine.centroids,
        engine.complexity,
        min_confidence=engine.settings.min_category_confidence,
    )
    clock.lap("classify")

    strategy, strategy_notes = _strategy(engine, assignment)
    estimates = strategy.estimate(vector, classification, entries)
    clock.lap("strategy")
    # A trained router drives the ranking only when it knew at least one candidate's model.
    predicted = any(source.startswith("ml:") for _, source in estimates)
    selection = await _select(engine, entries, estimates, profile, classification, signals, predicted)
    chosen = selection.ranked[0]
    if key is not None and profile.sticky_sessions:
        await engine.state.set_session(
            key, _record(chosen, profile, classification), engine.settings.session_ttl_seconds
        )
    clock.lap("select")

    response = RouteResponse(
        model=chosen.entry.model,
        deployment_id=chosen.entry.deployment_id,
        model_group=chosen.entry.model_group,
        fallbacks=[s.entry.deployment_id for s in selection.ranked[1 : 1 + MAX_FALLBACKS]],
        profile=profile.name,
        tier=classification.tier,
        category=classification.category,
        confidence=classification.confidence,
        complexity=classification.complexity,
        strategy=_strategy_name(strategy, classification, predicted),
        reason=_reason(profile, classification, selection, catalog_note),
        request_id=ctx.request_id,
        timings_ms={},
    )
    if request.explain:
        response.signals = signals.as_dict()
        response.scores = {
            "category": classification.category_scores,
            "tier": classification.tier_scores,
            "complexity_features": classification.features,
        }
        response.candidates = _explain(selection)
        response.signals["notes"] = describe(classification)["notes"]
    _mark_assignment(response, assignment, strategy_notes)
    _finish(engine, response, clock)
    return response


async def _select(
    engine: Engine,
    entries: list[CatalogEntry],
    estimates: list[tuple[float, str]],
    profile: Profile,
    classification: Classification,
    signals: Signals,
    predicted: bool,
) -> Selection:
    """Policy over the live breaker view and the premium budget; 422 when nothing can serve."""
    circuits = await engine.state.circuit_view()
    selection = select(
        entries, estimates, profile, classification, signals, circuits.open, predicted=predicted
    )
    await apply_premium_budget(engine, profile, selection)
    if not selection.ranked:
        raise NoCandidate(
            f"no candidate satisfies profile {profile.name!r} for this request",
            field="candidates",
            excluded={s.entry.deployment_id: s.excluded for s in selection.excluded},
        )
    chosen = selection.ranked[0].entry.deployment_id
    if chosen in circuits.probing:
        # Half-open breaker: this decision is one of its probes.
        await engine.state.claim_probe(chosen)
        selection.notes.append(f"circuit_probe:{chosen}")
    return selection


def _strategy_name(strategy: Strategy, classification: Classification, predicted: bool) -> str:
    if predicted:
        return strategy.name  # the router's qualities decided, whatever the category
    if classification.heuristic:
        return "heuristic"
    if classification.low_confidence:
        return "default"
    # an ml strategy that knew none of the candidates: the priors decided
    return "centroid" if strategy.name.startswith("ml:") else strategy.name


def _strategy(engine: Engine, assignment: Assignment | None) -> tuple[Strategy, tuple[str, ...]]:
    """The active strategy, or the variant's; a variant's strategy not loaded here -> centroid."""
    if assignment is None or not assignment.strategy:
        return engine.strategy(), ()
    strategy = engine.strategies.get(assignment.strategy) or engine.strategies["centroid"]
    if strategy.name != assignment.strategy:
        return strategy, (f"strategy_missing:{assignment.strategy}->{strategy.name}",)
    return strategy, ()


def _mark_assignment(response: RouteResponse, assignment: Assignment | None, extra: tuple[str, ...]) -> None:
    if assignment is None:
        return
    response.experiment, response.variant = assignment.experiment, assignment.variant
    response.reason = " ".join((response.reason, *assignment.notes, *extra))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


async def _embed(engine: Engine, segments: list[str]) -> Vector:
    """Local cache, then the shared cache (if configured), then an inference thread — admitted
    only while the embedding queue has room: past it the request is answered 503 at once
    (Retry-After): a caller with a ~50 ms budget gains nothing from a longer queue (admission.py)."""
    budget = engine.settings.token_budget
    key = cache_key(segments, budget)
    cached = engine.cache.get(key)
    if cached is not None:
        engine.metrics.cache.labels("hit").inc()
        return cached
    shared = engine.shared_cache
    if shared is not None:
        cached = await shared.get(key)
        if cached is not None:
            engine.metrics.cache.labels("shared_hit").inc()
            engine.cache.put(key, cached)
            return cached
    engine.metrics.cache.labels("miss").inc()
    queue = engine.embed_queue
    if not queue.try_acquire():
        engine.metrics.rejected.labels("queue_full").inc()
        raise Overloaded("the embedding queue is full; retry shortly", retry_after=1)
    try:
        loop = asyncio.get_running_loop()
        matrix, seconds = await loop.run_in_executor(engine.executor, _timed_embed, engine, segments, budget)
        queue.observe(seconds)
    finally:
        queue.release()
    vector: Vector = matrix[0]
    engine.cache.put(key, vector)
    if shared is not None:
        shared.put(key, vector)
    return vector


def _timed_embed(engine: Engine, segments: list[str], budget: int) -> tuple[npt.NDArray[np.float32], float]:
    """Runs on an inference thread; its wall time (contention included) feeds admission."""
    start = time.perf_counter()
    matrix = engine.embedder.embed([segments], budget)
    return matrix, time.perf_counter() - start


async def _session_choice(
    engine: Engine, key: str | None, profile: Profile, signals: Signals, entries: list[CatalogEntry]
) -> tuple[SessionRecord, CatalogEntry] | None:
    """Keep the conversation's model unless the profile changed or forbids it now. Inside a tool
    loop the model is kept even across a profile change (switching mid-loop breaks agents): only
    what the request needs (tools, vision, context window) can break it; the new profile's
    cost and provider limits apply from the next user turn."""
    if key is None or not profile.sticky_sessions:
        return None
    record = await engine.state.get_session(key, engine.settings.session_ttl_seconds)
    if record is None:
        return None
    if record.profile != profile.name and not signals.tool_loop:
        return None
    entry = next((e for e in entries if e.deployment_id == record.deployment_id), None)
    if entry is None:
        return None
    if hard_exclusion(entry, profile, signals, request_needs_only=signals.tool_loop) is not None:
        return None
    if entry.deployment_id in await engine.state.open_circuits():
        return None
    return record, entry


def _session_response(
    engine: Engine,
    sticky: tuple[SessionRecord, CatalogEntry],
    profile: Profile,
    ctx: Context,
    signals: Signals,
    request: RouteRequest,
    clock: _Clock,
) -> RouteResponse:
    record, entry = sticky
    response = RouteResponse(
        model=entry.model,
        deployment_id=entry.deployment_id,
        model_group=entry.model_group,
        fallbacks=[],
        profile=profile.name,
        tier=record.tier,
        category=record.category,
        confidence=1.0,
        complexity=record.complexity,
        strategy="session",
        reason="session_affinity:tool_loop" if signals.tool_loop else "session_affinity",
        request_id=ctx.request_id,
        timings_ms={},
    )
    if request.explain:
        response.signals = signals.as_dict()
    _finish(engine, response, clock)
    return response


def _record(chosen: Scored, profile: Profile, classification: Classification) -> SessionRecord:
    return SessionRecord(
        deployment_id=chosen.entry.deployment_id,
        model=chosen.entry.model,
        profile=profile.name,
        category=classification.category,
        tier=classification.tier,
        complexity=classification.complexity,
    )


def _reason(profile: Profile, c: Classification, selection: Selection, note: str | None) -> str:
    parts = [f"{profile.name}:{profile.prefer}", f"target:{selection.target_reason}"]
    parts.extend(n for n in c.notes if n.startswith(("rule:", "low_confidence", "non_english")))
    parts.extend(selection.notes)
    if note:
        parts.append(note)
    return " ".join(parts)


def _explain(selection: Selection) -> list[CandidateExplain]:
    ranked = [_explain_row(s, rank) for rank, s in enumerate(selection.ranked)]
    return ranked + [_explain_row(s, None) for s in selection.excluded]


def _explain_row(s: Scored, rank: int | None) -> CandidateExplain:
    return CandidateExplain(
        deployment_id=s.entry.deployment_id,
        model=s.entry.model,
        tier=s.entry.tier,
        expected_quality=s.quality,
        quality_source=s.quality_source,
        est_cost_per_mtok=round(s.cost, 4),
        rank=rank,
        excluded=s.excluded,
        demoted=s.demoted,
    )


def _finish(engine: Engine, response: RouteResponse, clock: _Clock) -> None:
    total = clock.total_ms()
    response.timings_ms = {k: round(v, 3) for k, v in clock.timings.items()}
    response.timings_ms["total"] = round(total, 3)
    stage = engine.metrics.stage
    for name, ms in clock.timings.items():
        stage(name).observe(ms / 1000)
    stage("total").observe(total / 1000)
    engine.metrics.decisions.labels(
        engine.metrics.model_label(response.model),
        response.tier,
        label(response.category),
        label(response.profile),
        label(response.strategy),
    ).inc()
