"""The JSON manifest that travels with every router graph (never pickle: plain JSON + ONNX)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from routeiq.artifacts.files import load_json
from routeiq.errors import ArtifactError

FORMAT = 1
KINDS = ("knn", "mlp", "linear", "mf")
INPUT_NAME = "embedding"
OUTPUT_NAME = "quality"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class RouterManifest:
    name: str
    kind: str
    graph_sha256: str
    embedder_name: str
    embedder_sha256: str
    dimension: int
    token_budget: int
    models: tuple[str, ...]
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""

    @property
    def graph_file(self) -> str:
        return f"{self.name}.onnx"

    @classmethod
    def load(cls, path: Path) -> RouterManifest:
        data = load_json(path, what="router manifest")
        try:
            if int(data.get("format", 0)) != FORMAT:
                raise ArtifactError(f"router manifest {path}: format {data.get('format')!r}, want {FORMAT}")
            manifest = cls(
                name=str(data["name"]),
                kind=str(data["kind"]),
                graph_sha256=str(data["graph_sha256"]),
                embedder_name=str(data["embedder"]["name"]),
                embedder_sha256=str(data["embedder"]["sha256"]),
                dimension=int(data["dimension"]),
                token_budget=int(data["token_budget"]),
                models=tuple(str(m) for m in data["models"]),
                training=dict(data.get("training") or {}),
                metrics=dict(data.get("metrics") or {}),
                created_at=str(data.get("created_at", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"router manifest {path} is incomplete: {exc!r}") from exc
        if manifest.name != path.stem:
            raise ArtifactError(f"router manifest {path} names router {manifest.name!r}, not {path.stem!r}")
        if not NAME_PATTERN.match(manifest.name):
            raise ArtifactError(f"router manifest {path}: name must match {NAME_PATTERN.pattern}")
        if manifest.kind not in KINDS:
            raise ArtifactError(f"router manifest {path}: kind {manifest.kind!r} is not one of {KINDS}")
        if not manifest.models or len(set(manifest.models)) != len(manifest.models):
            raise ArtifactError(f"router manifest {path}: 'models' must be non-empty and unique")
        return manifest

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        embedder = {"name": data.pop("embedder_name"), "sha256": data.pop("embedder_sha256")}
        data["models"] = list(self.models)
        return {"format": FORMAT, **data, "embedder": embedder, "input": INPUT_NAME, "output": OUTPUT_NAME}

    def save(self, folder: Path) -> Path:
        path = folder / f"{self.name}.json"
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
        return path
