"""Centroids: JSON built from prototype prompts (`routeiq centroids build`), never pickle.

A centroid set holds, per class, the normalised mean embedding of its prototypes, and is bound
to the embedder that made it (its sha256). Users add prototypes (even new categories) in a YAML
file; the service rebuilds at start-up, which takes a fraction of a second.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from routeiq.artifacts.files import load_json, load_yaml
from routeiq.decision.category_head import CategoryHead
from routeiq.decision.schemas import TIERS
from routeiq.errors import ArtifactError
from routeiq.inference.embedder import Embedder

PROTOTYPE_BUDGET = 256  # prototypes are short; embed them whole


@dataclass(frozen=True)
class CentroidSet:
    labels: tuple[str, ...]
    matrix: npt.NDArray[np.float32]  # (classes, dim), rows L2-normalised
    counts: tuple[int, ...]

    def cosines(self, vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return self.matrix @ vector


@dataclass(frozen=True)
class Centroids:
    embedder: str  # sha256 of the embedder graph these were computed with
    dimension: int
    categories: CentroidSet
    tiers: CentroidSet
    # When set, the category comes from this fitted layer instead of the nearest category
    # centroid (tiers always come from centroids); see decision/category_head.py.
    head: CategoryHead | None = None


def load_prototypes(path: Path) -> dict[str, dict[str, list[str]]]:
    data = load_yaml(path, what="prototypes file")
    result: dict[str, dict[str, list[str]]] = {}
    for section in ("categories", "tiers"):
        classes = data.get(section) or {}
        if not isinstance(classes, dict):
            raise ArtifactError(f"{path}: '{section}' must map class names to lists of prompts")
        for name, prompts in classes.items():
            if not isinstance(prompts, list) or not all(isinstance(p, str) and p.strip() for p in prompts):
                raise ArtifactError(f"{path}: {section}.{name} must be a list of non-empty strings")
        result[section] = {str(k): list(v) for k, v in classes.items()}
    unknown = set(result["tiers"]) - set(TIERS)
    if unknown:
        raise ArtifactError(f"{path}: unknown tiers {sorted(unknown)}; tiers are {list(TIERS)}")
    return result


def merge_prototypes(
    base: Mapping[str, Mapping[str, Sequence[str]]], extra: Mapping[str, Mapping[str, Sequence[str]]]
) -> dict[str, dict[str, list[str]]]:
    """User prototypes extend a class (or create a new category); they never remove built-ins."""
    merged = {section: {k: list(v) for k, v in classes.items()} for section, classes in base.items()}
    for section, classes in extra.items():
        target = merged.setdefault(section, {})
        for name, prompts in classes.items():
            target.setdefault(name, []).extend(prompts)
    return merged


def _centroid_set(embedder: Embedder, classes: Mapping[str, Sequence[str]]) -> CentroidSet:
    labels, rows, counts = [], [], []
    for label, prompts in classes.items():
        vectors = embedder.embed([[p] for p in prompts], PROTOTYPE_BUDGET)
        mean = vectors.mean(axis=0)
        rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        labels.append(label)
        counts.append(len(prompts))
    return CentroidSet(tuple(labels), np.asarray(rows, dtype=np.float32), tuple(counts))


def build(embedder: Embedder, prototypes: Mapping[str, Mapping[str, Sequence[str]]]) -> Centroids:
    return Centroids(
        embedder=embedder.fingerprint,
        dimension=embedder.dimension,
        categories=_centroid_set(embedder, prototypes["categories"]),
        tiers=_centroid_set(embedder, prototypes["tiers"]),
    )


def to_json(centroids: Centroids) -> dict[str, Any]:
    def section(cs: CentroidSet) -> dict[str, Any]:
        return {
            label: {"count": count, "vector": [round(float(x), 7) for x in row]}
            for label, count, row in zip(cs.labels, cs.counts, cs.matrix, strict=True)
        }

    return {
        "version": 1,
        "embedder_sha256": centroids.embedder,
        "dimension": centroids.dimension,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "categories": section(centroids.categories),
        "tiers": section(centroids.tiers),
    }


def save(centroids: Centroids, path: Path) -> None:
    path.write_text(json.dumps(to_json(centroids), indent=1) + "\n", encoding="utf-8")


def load(path: Path, embedder: Embedder) -> Centroids:
    data = load_json(path, what="centroids file")
    if data.get("embedder_sha256") != embedder.fingerprint:
        raise ArtifactError(
            f"centroids {path} were built with embedder {data.get('embedder_sha256')!r}, but the "
            f"loaded embedder is {embedder.fingerprint!r}; run `routeiq centroids build`."
        )

    def section(raw: Any, name: str) -> CentroidSet:
        if not isinstance(raw, dict) or not raw:
            raise ArtifactError(f"centroids {path}: '{name}' is missing or empty")
        labels = tuple(raw)
        try:
            matrix = np.asarray([raw[k]["vector"] for k in labels], dtype=np.float32)
            counts = tuple(int(raw[k]["count"]) for k in labels)
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"centroids {path}: '{name}' is malformed: {exc!r}") from exc
        if matrix.shape != (len(labels), embedder.dimension):
            raise ArtifactError(f"centroids {path}: '{name}' has shape {matrix.shape}")
        matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        return CentroidSet(labels, matrix, counts)

    tiers = section(data.get("tiers"), "tiers")
    if set(tiers.labels) != set(TIERS):
        raise ArtifactError(f"centroids {path}: tiers must be exactly {list(TIERS)}")
    return Centroids(
        embedder=embedder.fingerprint,
        dimension=embedder.dimension,
        categories=section(data.get("categories"), "categories"),
        tiers=tiers,
    )
