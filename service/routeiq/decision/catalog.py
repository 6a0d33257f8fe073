"""The model catalog: what each deployment costs and can do.

Three sources, most specific wins: per-request `candidates` > the user's catalog file > the
bundled `models/catalog.yaml`. Candidates the caller sends are completed from the catalog when
their model is known there (prices, context window, capabilities, quality prior).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from routeiq.artifacts.files import load_yaml
from routeiq.decision.names import model_names
from routeiq.decision.schemas import ModelTier, RouteRequest
from routeiq.errors import ArtifactError, InvalidRequest

# Quality priors and blended prices for candidates the catalog does not know.
DEFAULT_QUALITY: dict[str, float] = {"budget": 0.62, "mid": 0.78, "premium": 0.9}

# `model` values that mean "RouteIQ, you choose among everything".
ROUTER_ALIASES = frozenset({"", "auto", "routeiq", "router", "default", "routeiq/auto"})


class CatalogEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    deployment_id: str = Field(min_length=1)
    model: str = Field(min_length=1)
    model_group: str | None = None
    provider: str | None = None
    tier: ModelTier = "mid"
    quality: float = Field(0.78, ge=0, le=1)
    strengths: dict[str, float] = Field(default_factory=dict)
    input_cost_per_mtok: float | None = Field(None, ge=0)
    output_cost_per_mtok: float | None = Field(None, ge=0)
    max_input_tokens: int | None = Field(None, ge=1)
    supports_tools: bool = True
    supports_reasoning: bool = False
    supports_vision: bool = False
    free: bool = False

    @property
    def blended_cost(self) -> float | None:
        """$/Mtok assuming 3 input tokens per output token (typical chat traffic)."""
        if self.input_cost_per_mtok is None or self.output_cost_per_mtok is None:
            return None
        return (3 * self.input_cost_per_mtok + self.output_cost_per_mtok) / 4

    @property
    def is_free(self) -> bool:
        return self.free or self.blended_cost == 0


@dataclass(frozen=True)
class Catalog:
    entries: tuple[CatalogEntry, ...]
    _by_name: dict[str, CatalogEntry] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for entry in self.entries:
            for name in model_names(entry.model, entry.model_group, entry.deployment_id):
                self._by_name.setdefault(name, entry)

    @classmethod
    def load(cls, bundled: Path, *users: Path | None) -> Catalog:
        """The bundled catalog with each user file merged over it in turn (service, tenant)."""
        entries = _load_entries(bundled)
        for user in users:
            if user is None:
                continue
            overrides = {e.deployment_id: e for e in _load_entries(user)}
            entries = [overrides.pop(e.deployment_id, e) for e in entries] + list(overrides.values())
        return cls(tuple(entries))

    def lookup(self, *names: str | None) -> CatalogEntry | None:
        for name in model_names(*names):
            entry = self._by_name.get(name)
            if entry is not None:
                return entry
        return None

    def candidates_for(self, request: RouteRequest) -> tuple[list[CatalogEntry], str | None]:
        """The deployments to choose among, and a note when `model` narrowed or was ignored."""
        if request.candidates:
            ids = [c.deployment_id for c in request.candidates]
            if len(set(ids)) != len(ids):
                duplicate = next(i for i in ids if ids.count(i) > 1)
                raise InvalidRequest(
                    f"candidates: deployment_id {duplicate!r} appears twice", field="candidates"
                )
            return [self._complete(c.model_dump(exclude_none=True)) for c in request.candidates], None
        requested = (request.model or "").strip().lower()
        if requested in ROUTER_ALIASES:
            return list(self.entries), None
        group = [e for e in self.entries if requested in model_names(e.model, e.model_group, e.deployment_id)]
        if group:
            return group, f"model:{requested}"
        return list(self.entries), "model_not_in_catalog"

    def _complete(self, given: dict[str, Any]) -> CatalogEntry:
        known = self.lookup(given.get("model"), given.get("model_group"))
        base: dict[str, Any] = known.model_dump() if known is not None else {}
        base.update(given)
        if known is None:
            base.setdefault("tier", _tier_from_cost(given))
            base.setdefault("quality", DEFAULT_QUALITY[base["tier"]])
        try:
            return CatalogEntry.model_validate(base)
        except ValidationError as exc:  # the request schema already bounds every field
            raise InvalidRequest(
                f"candidate {given.get('deployment_id')!r} is invalid: {exc.errors()[0]['msg']}",
                field="candidates",
            ) from exc


def _tier_from_cost(given: dict[str, Any]) -> ModelTier:
    inp, out = given.get("input_cost_per_mtok"), given.get("output_cost_per_mtok")
    if inp is None or out is None:
        return "mid"
    blended = (3 * inp + out) / 4
    if blended <= 1.0:
        return "budget"
    return "mid" if blended <= 6.0 else "premium"


def _load_entries(path: Path) -> list[CatalogEntry]:
    data = load_yaml(path, what="catalog")
    raw = data.get("models")
    if not isinstance(raw, list) or not raw:
        raise ArtifactError(f"catalog {path}: 'models' must be a non-empty list")
    entries: list[CatalogEntry] = []
    for index, item in enumerate(raw):
        try:
            entries.append(CatalogEntry.model_validate(item))
        except ValidationError as exc:
            raise ArtifactError(f"catalog {path}: models[{index}] is invalid: {exc}") from exc
    _unique(entries, path)
    return entries


def _unique(entries: Iterable[CatalogEntry], path: Path) -> None:
    seen: set[str] = set()
    for entry in entries:
        if entry.deployment_id in seen:
            raise ArtifactError(f"catalog {path}: deployment_id {entry.deployment_id!r} appears twice")
        seen.add(entry.deployment_id)
