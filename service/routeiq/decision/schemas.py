"""The wire contract of POST /route (docs/api.md describes it). Pydantic models, no behaviour.

Requests are lenient where gateways differ (unknown top-level keys are ignored, message objects
keep OpenAI's extra fields) and strict where a wrong type would change the decision.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Tier = Literal["trivial", "simple", "moderate", "complex", "expert"]
TIERS: tuple[Tier, ...] = ("trivial", "simple", "moderate", "complex", "expert")
ModelTier = Literal["budget", "mid", "premium"]
MODEL_TIERS: tuple[ModelTier, ...] = ("budget", "mid", "premium")

_SHORT = 256  # identifiers: profile, session, user, team, model names


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = Field(max_length=64)
    text: str | None = None


class Message(BaseModel):
    """An OpenAI chat message; content may be text, a list of parts, or absent (tool calls)."""

    model_config = ConfigDict(extra="allow")
    role: str = Field(min_length=1, max_length=32)
    content: str | list[ContentPart] | None = None
    name: str | None = Field(None, max_length=_SHORT)
    tool_calls: list[dict[str, Any]] | None = None
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


class RouteRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    messages: list[Message] | None = None
    prompt: str | list[str] | None = None
    input: str | list[str] | None = None
    model: str | None = Field(None, max_length=_SHORT)
    tools: list[dict[str, Any]] | None = None
    candidates: list[Candidate] | None = None
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
    timings_ms: dict[str, float]
    signals: dict[str, Any] | None = None
    candidates: list[CandidateExplain] | None = None
    scores: dict[str, dict[str, float]] | None = None


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


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    outcomes: list[Outcome] = Field(min_length=1, max_length=1000)
