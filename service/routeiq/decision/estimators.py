"""Estimators: per candidate, the expected quality of its answer to this prompt, in [0, 1].

An estimator is what the API and settings call a *strategy*, by its name: `centroid` (the
zero-config estimator: the catalog's quality prior, the category's strengths and the prompt's
complexity) or `ml:<name>` (a trained router, see `routeiq.trained`). Candidates a trained
router does not know fall back to the centroid estimate, and say so (source "prior").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from routeiq.decision.catalog import CatalogEntry
from routeiq.decision.classify import Classification, ComplexityModel
from routeiq.decision.names import CENTROID

# Where a candidate's expected quality came from when no trained router knew its model.
PRIOR_SOURCE = "prior"


class Estimator(Protocol):
    name: str

    def estimate(
        self,
        vector: npt.NDArray[np.float32],
        classification: Classification,
        entries: Sequence[CatalogEntry],
    ) -> list[tuple[float, str]]:
        """(expected quality in [0,1], where it came from) for each entry, in order."""
        ...


class CentroidEstimator:
    name = CENTROID

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
            out.append((round(quality, 4), PRIOR_SOURCE))
        return out
