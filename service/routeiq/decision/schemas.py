"""The wire contract of POST /route (docs/api.md describes it). Pydantic models, no behaviour.

Requests are lenient where gateways differ (unknown top-level keys are ignored, message objects
keep OpenAI's extra fields) and strict where a wrong type would change the decision.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

Tier = Literal["trivial", "simple", "moderate", "complex", "expert"]
TIERS: tuple[Tier, ...] = ("trivial", "simple", "moderate", "complex", "expert")
ModelTier = Literal["budget", "mid", "premium"]
MODEL_TIERS: tuple[ModelTier, ...] = ("budget", "mid", "premium")

_SHORT = 256  # identifiers: profile, session, user, team, model names

# Ceilings on list lengths, checked before a single item is validated. The configured limits
# (ROUTEIQ_MAX_MESSAGES and friends, at most these) are enforced on the parsed request by
# http/request_limits.py; these exist so that a body of half a million items is refused after
# one `len()` instead of after validating (or collecting an error for) every item on the event
# loop. `FailFast` stops a list at its first invalid item for the same reason.
MAX_MESSAGES_CEILING = 10_000
MAX_CANDIDATES_CEILING = 4_096
MAX_TOOLS_CEILING = 4_096
MAX_CONTENT_PARTS_CEILING = 1_024
MAX_TEXT_ITEMS_CEILING = 10_000  # items of a `prompt` / `input` list, tool calls of a message
MAX_BATCH_CEILING = 1_024
MAX_OUTCOMES = 1_000


def _ceiling(limit: int, setting: str | None) -> BeforeValidator:
    def check(value: Any) -> Any:
        if isinstance(value, list) and len(value) > limit:
            raise PydanticCustomError(
                "too_long",
                "{count} items; at most {limit} are read{where}",
                {
                    "count": len(value),
                    "limit": limit,
                    "where": f", the most {setting} can allow" if setting else "",
                },
            )
        return value

    return BeforeValidator(check)


# Each list a caller controls: refused before item validation when longer than its ceiling,
# and stopped at the first invalid item (`fail_fast`).
_FAST = Field(fail_fast=True)
TextItems = Annotated[list[str], _FAST, _ceiling(MAX_TEXT_ITEMS_CEILING, None)]
JsonObjects = Annotated[list[dict[str, Any]], _FAST, _ceiling(MAX_TEXT_ITEMS_CEILING, None)]
Tools = Annotated[list[dict[str, Any]], _FAST, _ceiling(MAX_TOOLS_CEILING, "ROUTEIQ_MAX_TOOLS")]


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = Field(max_length=64)
    text: str | None = None


ContentParts = Annotated[
    list[ContentPart], _FAST, _ceiling(MAX_CONTENT_PARTS_CEILING, "ROUTEIQ_MAX_CONTENT_PARTS")
]


class Message(BaseModel):
    """An OpenAI chat message; content may be text, a list of parts, or absent (tool calls)."""

    model_config = ConfigDict(extra="allow")
    role: str = Field(min_length=1, max_length=32)
    content: str | ContentParts | None = None
    name: str | None = Field(None, max_length=_SHORT)
    tool_calls: JsonObjects | None = None
    tool_call_id: str | None = Field(None, max_length=_SHORT)


class Candidate(BaseModel):
    """A deployment the caller lets RouteIQ choose."""

    model_config = ConfigDict(extra="ignore")
    deployment_id: str = Field(min_length=1, max_length=_SHORT)
    model: str = Field(min_length=1, max_length=_SHORT)
    model_group: str | None = Field(None, max_length=_SHORT)
    provider: str | None = Field(None, max_length=64)
    input_cost_per_mtok: float | None = Field(None, ge=0, le=1e6)
    output_cost_per_mtok: float | None = Field(None, ge=0, le=1e6)
    tier: ModelTier | None = None
    quality: float | None = Field(None, ge=0, le=1)
    max_input_tokens: int | None = Field(None, ge=1, le=100_000_000)
    supports_tools: bool | None = None
    supports_reasoning: bool | None = None
    supports_vision: bool | None = None


Messages = Annotated[list[Message], _FAST, _ceiling(MAX_MESSAGES_CEILING, "ROUTEIQ_MAX_MESSAGES")]
Candidates = Annotated[list[Candidate], _FAST, _ceiling(MAX_CANDIDATES_CEILING, "ROUTEIQ_MAX_CANDIDATES")]


class RouteRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    messages: Messages | None = None
    prompt: str | TextItems | None = None
    input: str | TextItems | None = None
    model: str | None = Field(None, max_length=_SHORT)
    tools: Tools | None = None
    candidates: Candidates | None = None
    profile: str | None = Field(None, max_length=_SHORT)
    session_id: str | None = Field(None, max_length=_SHORT)
    user: str | None = Field(None, max_length=_SHORT)
    team: str | None = Field(None, max_length=_SHORT)
    key_alias: str | None = Field(None, max_length=_SHORT)
    metadata: dict[str, Any] | None = None
    explain: bool = False

    @field_validator("messages")
    @classmethod
    def _messages_not_empty(cls, value: list[Message] | None) -> list[Message] | None:
        if value is not None and not value:
            raise ValueError("messages must not be empty")
        return value

    @model_validator(mode="after")
    def _has_text_source(self) -> RouteRequest:
        if self.messages is None and self.prompt is None and self.input is None:
            raise ValueError("one of messages, prompt or input is required")
        return self


class CandidateExplain(BaseModel):
    deployment_id: str
    model: str
    tier: ModelTier
    expected_quality: float
    quality_source: str
    est_cost_per_mtok: float
    rank: int | None
    excluded: str | None
    demoted: list[str] = Field(default_factory=list)


class RouteResponse(BaseModel):
    model: str
    deployment_id: str
    model_group: str | None
    fallbacks: list[str]
    profile: str
    tier: Tier
    category: str
    confidence: float
    complexity: float
    strategy: str
    reason: str
    request_id: str
    experiment: str | None = None
    variant: str | None = None
    # The experiment's ramp phase (0 before its first ramp): echo it in /feedback with the variant.
    experiment_phase: int | None = None
    timings_ms: dict[str, float]
    signals: dict[str, Any] | None = None
    candidates: list[CandidateExplain] | None = None
    scores: dict[str, dict[str, float]] | None = None


# The body of POST /route/batch: a list of /route bodies.
BatchBody = Annotated[list[RouteRequest], _FAST, _ceiling(MAX_BATCH_CEILING, "ROUTEIQ_MAX_BATCH_SIZE")]


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    requests: list[dict[str, Any]] = Field(min_length=1)


class BatchItemError(BaseModel):
    error: dict[str, Any]


class BatchResponse(BaseModel):
    results: list[RouteResponse | BatchItemError]


class Outcome(BaseModel):
    """One reported outcome of a routed request."""

    model_config = ConfigDict(extra="ignore")
    deployment_id: str = Field(min_length=1, max_length=_SHORT)
    model: str | None = Field(None, max_length=_SHORT)
    success: bool
    latency_ms: float | None = Field(None, ge=0, le=3_600_000)
    error_class: str | None = Field(None, max_length=128)
    quality: float | None = Field(None, ge=0, le=1)
    request_id: str | None = Field(None, max_length=_SHORT)
    session_id: str | None = Field(None, max_length=_SHORT)
    # Echo the decision's `experiment` / `variant` so the outcome counts for that A/B variant.
    experiment: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    variant: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    # ... and its `experiment_phase`, so the outcome counts in the ramp phase it was decided in.
    experiment_phase: int | None = Field(None, ge=0, le=1_000)


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    outcomes: Annotated[list[Outcome], _FAST, _ceiling(MAX_OUTCOMES, None)] = Field(min_length=1)
