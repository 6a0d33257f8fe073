"""Strategies estimate, per candidate, the expected quality of its answer to this prompt.

`centroid` (zero-config) derives it from the catalog's quality prior, the category's strengths
and the prompt's complexity. Trained routers (`ml:<name>`, see routers/) predict it per model;
candidates a router does not know fall back to the centroid estimate, and say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from .catalog import CatalogEntry
from .classify import Classification, ComplexityModel


class Strategy(Protocol):
    name: str

    def estimate(
        self,
        vector: npt.NDArray[np.float32],
        classification: Classification,
        entries: Sequence[CatalogEntry],
    ) -> list[tuple[float, str]]:
        """(expected quality in [0,1], where it came from) for each entry, in order."""
        ...


class CentroidStrategy:
    name = "centroid"

    def __init__(self, model: ComplexityModel) -> None:
        self._model = model

    def estimate(
        self,
        vector: npt.NDArray[np.float32],
        classification: Classification,
        entries: Sequence[CatalogEntry],
    ) -> list[tuple[float, str]]:
        category = None if classification.low_confidence else classification.category
        out = []
        for entry in entries:
            capability = entry.quality + (entry.strengths.get(category, 0.0) if category else 0.0)
            quality = self._model.expected_quality(capability, classification.complexity)
            out.append((round(quality, 4), "prior"))
        return out
