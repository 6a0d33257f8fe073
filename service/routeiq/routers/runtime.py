"""Serving trained routers: verify, load into onnxruntime, predict per-candidate quality.

A router is refused (ArtifactError, with the reason) when its manifest is malformed, its graph's
sha256 differs from the manifest, or it was trained on another embedder's vectors (its
predictions would be meaningless). The graph is hashed from the very bytes handed to
onnxruntime, so a file swapped between the check and the load cannot slip through.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..catalog import CatalogEntry
from ..classify import Classification
from ..errors import ArtifactError
from ..strategies import Strategy
from .manifest import INPUT_NAME, OUTPUT_NAME, RouterManifest

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger("routeiq.routers")

# Where a candidate's expected quality came from when the router does not know its model.
PRIOR_SOURCE = "prior"


def name_keys(value: str | None) -> list[str]:
    """A model is known by its full name and by its name without provider prefixes, lower-cased
    ("nvidia_nim/meta/llama-3.1-8b-instruct" matches a router trained on "llama-3.1-8b-instruct")."""
    if not value:
        return []
    lowered = value.strip().lower()
    keys = [lowered]
    if "/" in lowered:
        keys.append(lowered.rsplit("/", 1)[1])
    return keys


class OnnxRouter:
    """One verified router graph on an onnxruntime session: [N, dim] embeddings -> [N, models]."""

    def __init__(self, manifest_path: Path, embedder_sha256: str, *, intra_op_threads: int = 1) -> None:
        import onnxruntime as ort

        manifest = RouterManifest.load(manifest_path)
        if manifest.embedder_sha256 != embedder_sha256:
            raise ArtifactError(
                f"router {manifest.name!r} was trained on embedder {manifest.embedder_name} "
                f"(sha256 {manifest.embedder_sha256[:12]}…) but the service runs sha256 "
                f"{embedder_sha256[:12]}…; retrain it with `routeiq train` on this embedder"
            )
        graph_path = manifest_path.with_name(manifest.graph_file)
        try:
            graph = graph_path.read_bytes()
        except OSError as exc:
            raise ArtifactError(
                f"router {manifest.name!r} graph cannot be read: {graph_path}: {exc}"
            ) from exc
        actual = hashlib.sha256(graph).hexdigest()
        if actual != manifest.graph_sha256:
            raise ArtifactError(
                f"router {manifest.name!r} graph does not match its manifest: {graph_path} has sha256 "
                f"{actual}, manifest says {manifest.graph_sha256}; the file was altered or replaced"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(graph, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ArtifactError(f"router {manifest.name!r} graph cannot be loaded: {exc}") from exc
        self._check_signature(session, manifest)
        self._session = session
        self.manifest = manifest
        self.name = manifest.name
        self._columns: dict[str, int] = {}
        for index, model in enumerate(manifest.models):
            for key in name_keys(model):
                self._columns.setdefault(key, index)

    @staticmethod
    def _check_signature(session: Any, manifest: RouterManifest) -> None:
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if [i.name for i in inputs] != [INPUT_NAME] or OUTPUT_NAME not in [o.name for o in outputs]:
            raise ArtifactError(
                f"router {manifest.name!r} graph must take {INPUT_NAME!r} and give {OUTPUT_NAME!r}"
            )
        width = inputs[0].shape[-1]
        if isinstance(width, int) and width != manifest.dimension:
            raise ArtifactError(
                f"router {manifest.name!r} takes {width}-d vectors, manifest says {manifest.dimension}"
            )

    def column(self, entry: CatalogEntry) -> int | None:
        """The output column for this candidate's model, or None when the router never saw it."""
        for value in (entry.model, entry.model_group, entry.deployment_id):
            for key in name_keys(value):
                if key in self._columns:
                    return self._columns[key]
        return None

    def predict(self, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        batch = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.manifest.dimension)
        out: npt.NDArray[np.float32] = self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
        return out


class MLStrategy:
    """`ml:<name>`: the router's predicted quality per candidate; the fallback strategy's estimate
    (source "prior") for candidates whose model the router does not know."""

    def __init__(self, router: OnnxRouter, fallback: Strategy) -> None:
        self.router = router
        self.name = f"ml:{router.name}"
        self._fallback = fallback

    def estimate(
        self,
        vector: npt.NDArray[np.float32],
        classification: Classification,
        entries: Sequence[CatalogEntry],
    ) -> list[tuple[float, str]]:
        columns = [self.router.column(entry) for entry in entries]
        if all(c is None for c in columns):
            return self._fallback.estimate(vector, classification, entries)
        predicted = self.router.predict(vector)[0]
        prior: list[tuple[float, str]] | None = None
        out: list[tuple[float, str]] = []
        for index, column in enumerate(columns):
            if column is None:
                prior = prior or self._fallback.estimate(vector, classification, entries)
                out.append((prior[index][0], PRIOR_SOURCE))
            else:
                quality = min(max(float(predicted[column]), 0.0), 1.0)
                out.append((round(quality, 4), self.name))
        return out


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"loaded": self.loaded, "refused": self.refused}


def load_routers(
    folder: Path, embedder_sha256: str, fallback: Strategy, *, intra_op_threads: int = 1
) -> tuple[dict[str, Strategy], LoadReport]:
    """Every `<name>.json` + `<name>.onnx` in `folder` as `ml:<name>` strategies (the folder
    holds routers only). A router that fails verification is refused and reported, not loaded;
    the others still load. Whether a refusal stops start-up is the caller's call."""
    strategies: dict[str, Strategy] = {}
    report = LoadReport()
    if not folder.is_dir():
        return strategies, report
    for manifest_path in sorted(folder.glob("*.json")):
        try:
            router = OnnxRouter(manifest_path, embedder_sha256, intra_op_threads=intra_op_threads)
        except ArtifactError as exc:
            report.refused[manifest_path.stem] = exc.message
            log.error("router refused: %s", exc.message)
            continue
        strategy = MLStrategy(router, fallback)
        strategies[strategy.name] = strategy
        report.loaded.append(strategy.name)
    return strategies, report


def routers_folder(engine: Engine) -> Path:
    return engine.settings.routers_path or engine.settings.models_path / "routers"


def reload_routers(engine: Engine) -> LoadReport:
    """Re-read the routers folder and swap the `ml:*` strategies in one assignment; decisions in
    flight keep the strategy object they already hold. The admin reload calls this (as a reload
    hook): if the strategy serving now is an `ml:` router that would not survive the reload
    (refused or gone), it raises ArtifactError and changes nothing."""
    fallback = engine.strategies["centroid"]
    loaded, report = load_routers(
        routers_folder(engine),
        engine.embedder.fingerprint,
        fallback,
        intra_op_threads=1,
    )
    active = engine.strategy().name
    if active.startswith("ml:") and active not in loaded:
        why = report.refused.get(active[3:], "it is no longer in the routers folder")
        raise ArtifactError(f"reload refused: the active strategy {active} would be lost: {why}")
    budget = engine.settings.token_budget
    for strategy in loaded.values():
        trained_budget = strategy.router.manifest.token_budget if isinstance(strategy, MLStrategy) else budget
        if trained_budget != budget:
            # Long prompts would be embedded differently from the training data: served, but said.
            log.warning(
                "router %s was trained with token budget %d, the service embeds %d tokens; "
                "retrain with the service's ROUTEIQ_TOKEN_BUDGET for matching vectors",
                strategy.name,
                trained_budget,
                budget,
            )
    kept = {k: v for k, v in engine.strategies.items() if not k.startswith("ml:")}
    engine.strategies = {**kept, **loaded}
    return report
