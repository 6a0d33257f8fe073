"""Session affinity: a conversation keeps its model, so an agent's tool loop never switches
models half-way. This module decides; the pipeline reads and writes the records in state."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from routeiq.decision.catalog import CatalogEntry
from routeiq.decision.classify import Classification
from routeiq.decision.policy import hard_exclusion
from routeiq.decision.profiles import Profile
from routeiq.decision.prompt import PromptView
from routeiq.decision.schemas import RouteRequest
from routeiq.decision.signals import Signals


@dataclass(frozen=True)
class SessionRecord:
    deployment_id: str
    model: str
    profile: str
    category: str
    tier: str
    complexity: float

    def to_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionRecord:
        return cls(
            deployment_id=str(data["deployment_id"]),
            model=str(data["model"]),
            profile=str(data["profile"]),
            category=str(data["category"]),
            tier=str(data["tier"]),
            complexity=float(data["complexity"]),
        )


def session_key(request: RouteRequest, session_header: str | None, view: PromptView) -> str | None:
    """The caller's session id, else a fingerprint of the conversation's opening (system prompt
    + first user turn) once it has more than one message: agent loops stick without an id."""
    scope = f"{request.team or ''}|{request.user or ''}"
    explicit = session_header or request.session_id
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


def sticky_entry(
    record: SessionRecord, profile: Profile, signals: Signals, entries: Sequence[CatalogEntry]
) -> CatalogEntry | None:
    """The conversation's deployment if it may keep serving: not when the profile changed (except
    inside a tool loop, where switching breaks agents: only what the request needs — tools,
    vision, context window — can break it; the new profile's cost and provider limits apply from
    the next user turn), nor when it is no longer a candidate."""
    if record.profile != profile.name and not signals.tool_loop:
        return None
    entry = next((e for e in entries if e.deployment_id == record.deployment_id), None)
    if entry is None:
        return None
    if hard_exclusion(entry, profile, signals, request_needs_only=signals.tool_loop) is not None:
        return None
    return entry


def session_record(entry: CatalogEntry, profile: Profile, classification: Classification) -> SessionRecord:
    return SessionRecord(
        deployment_id=entry.deployment_id,
        model=entry.model,
        profile=profile.name,
        category=classification.category,
        tier=classification.tier,
        complexity=classification.complexity,
    )
