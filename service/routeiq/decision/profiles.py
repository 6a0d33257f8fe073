"""Routing profiles: what a caller is willing to pay for and what a model must be able to do.

Built-ins (auto, eco, premium, free, reasoning) ship in `models/profiles.yaml`; a user file adds
or replaces profiles and maps teams and API-key aliases to profiles. Resolution order:
`X-RouteIQ-Profile` header > body `profile` (or metadata.routeiq_profile) > team > key alias >
the configured default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from routeiq.artifacts.files import load_yaml
from routeiq.decision.schemas import ModelTier, Tier
from routeiq.errors import ArtifactError, UnknownProfile

Capability = Literal["tools", "reasoning", "vision"]


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = ""
    description: str = ""
    quality_floor: float | None = Field(None, ge=0, le=1)
    max_cost_per_mtok: float | None = Field(None, ge=0)
    tier_map: dict[Tier, ModelTier] = Field(
        default_factory=lambda: {  # type: ignore[arg-type]
            "trivial": "budget",
            "simple": "budget",
            "moderate": "mid",
            "complex": "premium",
            "expert": "premium",
        }
    )
    # Category -> the lowest model tier that category should get (the built-in profiles in
    # models/profiles.yaml treat code, creative, reasoning and tool use as premium work;
    # summarisation and chat as budget work).
    category_tiers: dict[str, ModelTier] = Field(default_factory=dict)
    required_capabilities: list[Capability] = Field(default_factory=list)
    allowed_providers: list[str] = Field(default_factory=list)
    free_only: bool = False
    prefer: Literal["cheapest", "balanced", "quality"] = "balanced"
    # Under a trained router (`ml:<name>`) a `balanced` profile picks the cheapest candidate whose
    # predicted quality reaches this; null = quality_floor, else policy.ML_DEFAULT_THRESHOLD.
    # `routeiq calibrate` sets it for a target share of premium traffic.
    ml_threshold: float | None = Field(None, ge=0, le=1)
    sticky_sessions: bool = True


@dataclass(frozen=True)
class Profiles:
    profiles: dict[str, Profile]
    default: str
    teams: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(
        cls, bundled: Path, user: Path | None = None, default: str | None = None, *, extra: Path | None = None
    ) -> Profiles:
        """Built-ins, then the user file, then `extra` (a tenant's) merged over them."""
        base = _read(bundled)
        profiles, teams, keys = base.profiles, dict(base.teams), dict(base.keys)
        chosen = base.default
        for path in (user, extra):
            if path is None:
                continue
            more = _read(path)
            profiles = {**profiles, **more.profiles}
            teams.update(more.teams)
            keys.update(more.keys)
            chosen = more.default or chosen
        chosen = default or chosen or "auto"
        result = cls(profiles, chosen, teams, keys)
        for where, name in [("default", chosen), *teams.items(), *keys.items()]:
            if name not in profiles:
                raise ArtifactError(f"profiles: {where!r} points at unknown profile {name!r}")
        return result

    def resolve(
        self, header: str | None, body: str | None, team: str | None, key_alias: str | None
    ) -> Profile:
        for source, name in (("header", header), ("body", body)):
            if name:
                profile = self.profiles.get(name.strip().lower())
                if profile is None:
                    raise UnknownProfile(
                        f"unknown profile {name!r}; known: {sorted(self.profiles)}",
                        field="X-RouteIQ-Profile" if source == "header" else "profile",
                    )
                return profile
        if team and team in self.teams:
            return self.profiles[self.teams[team]]
        if key_alias and key_alias in self.keys:
            return self.profiles[self.keys[key_alias]]
        return self.profiles[self.default]


@dataclass(frozen=True)
class _Raw:
    profiles: dict[str, Profile]
    default: str | None
    teams: dict[str, str]
    keys: dict[str, str]


def _read(path: Path) -> _Raw:
    data = load_yaml(path, what="profiles file")
    raw = data.get("profiles") or {}
    if not isinstance(raw, dict):
        raise ArtifactError(f"profiles file {path}: 'profiles' must be a mapping")
    profiles: dict[str, Profile] = {}
    for name, body in raw.items():
        key = str(name).strip().lower()
        try:
            profiles[key] = Profile.model_validate({**(body or {}), "name": key})
        except ValidationError as exc:
            raise ArtifactError(f"profiles file {path}: profile {name!r} is invalid: {exc}") from exc
    teams, keys = data.get("teams") or {}, data.get("keys") or {}
    if not isinstance(teams, dict) or not isinstance(keys, dict):
        raise ArtifactError(f"profiles file {path}: 'teams' and 'keys' must be mappings")
    default = data.get("default")
    return _Raw(
        profiles,
        str(default).lower() if default else None,
        {str(k): str(v).lower() for k, v in teams.items()},
        {str(k): str(v).lower() for k, v in keys.items()},
    )
